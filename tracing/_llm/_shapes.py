"""Pieces every endpoint shares: building the output record.

Every response field is read with ``getattr`` and a default: fields the newest types
declare are absent from older payloads and from OpenAI-compatible servers, and a field
the instrumentation cannot read is left out, never an error.
"""

from __future__ import annotations

from typing import Any

__all__ = ["message_output", "one_or_many", "tool_call"]


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
