"""Pieces every endpoint shares: building the output record.

Every response field is read with ``getattr`` and a default: fields the newest types
declare are absent from older payloads and from OpenAI-compatible servers, and a field
the instrumentation cannot read is left out, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SENTINELS", "given", "message_output", "one_or_many", "tool_call"]

# The SDKs' unset-argument defaults (``NotGiven``, ``Omit``): Anthropic's transform leaves
# them in the request body (``json_data``) and in ``headers``. Told apart by their class
# name, which both SDKs have kept across versions.
SENTINELS = frozenset({"Omit", "NotGiven"})


def given(body: Mapping[str, Any], key: str) -> Any:
    """``body[key]``; None when it is missing or one of the SDKs' unset defaults."""
    value = body.get(key)
    return None if type(value).__name__ in SENTINELS else value


def tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "name": name, "arguments": arguments}


def message_output(text: str | None, tool_calls: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The assistant message a span records: its text and its tool calls."""
    out: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        out["tool_calls"] = tool_calls
    return out


def one_or_many(outputs: list[dict[str, Any]]) -> Any:
    """One choice is recorded as its message; several (``n > 1``) as a list."""
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else outputs
