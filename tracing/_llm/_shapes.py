"""Pieces every endpoint shares: reading request parameters, building the output record.

Every response field is read with ``getattr`` and a default: fields the newest types
declare are absent from older payloads and from OpenAI-compatible servers, and a field
the instrumentation cannot read is left out, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["message_output", "request_metadata", "tool_call"]

_REQUEST_PARAMS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("max_output_tokens", "gen_ai.request.max_tokens"),
    ("seed", "gen_ai.request.seed"),
    ("stop", "gen_ai.request.stop_sequences"),
    ("stop_sequences", "gen_ai.request.stop_sequences"),
)


def request_metadata(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request's sampling parameters under their GenAI semantic-convention names."""
    meta: dict[str, Any] = {}
    for key, name in _REQUEST_PARAMS:
        value = body.get(key)
        if value is not None:
            meta[name] = value
    return meta


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
