"""OpenAI ``POST /responses`` (the Responses API), complete and streamed, and
``ENDPOINTS``: every OpenAI endpoint (``_openai``'s and this one).

Usage as in ``_openai``: ``input_tokens`` already include cached input and
``output_tokens`` include reasoning; the details go to metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._call import Result, unreadable_chunk
from ._call import perf as _perf
from ._content import freeze, input_snapshot, snapshot, strip_base64, thaw
from ._openai import ENDPOINTS as _OTHERS
from ._openai_chunks import RESPONSES_USAGE, read_usage
from ._shapes import given, message_output, tool_call

__all__ = ["ENDPOINTS", "Responses"]


class Responses:
    """``POST /responses`` (the Responses API)."""

    operation = "chat"

    def snapshot(self, body: Mapping[str, Any]) -> Any:
        return freeze([given(body, "instructions"), given(body, "input")], _responses_input)

    def input_of(self, frozen: Any) -> Any:
        return thaw(frozen, _responses_input)

    def read(self, obj: Any, result: Result) -> None:
        result.model = getattr(obj, "model", None)
        result.response_id = getattr(obj, "id", None)
        status = getattr(obj, "status", None)
        details = getattr(obj, "incomplete_details", None)
        reason = getattr(details, "reason", None) if details is not None else None
        if reason or status:
            result.finish_reasons = [str(reason or status)]
        texts: list[str] = []
        calls = []
        for item in getattr(obj, "output", None) or ():
            kind = getattr(item, "type", None)
            if kind == "message":
                for part in getattr(item, "content", None) or ():
                    if getattr(part, "type", None) == "output_text":
                        texts.append(part.text)
            elif kind == "function_call":
                calls.append(
                    tool_call(
                        getattr(item, "call_id", None),
                        getattr(item, "name", None),
                        getattr(item, "arguments", None),
                    )
                )
        result.output = message_output("".join(texts) if texts else None, calls)
        read_usage(getattr(obj, "usage", None), result, RESPONSES_USAGE)

    def stream(self, result: Result) -> ResponsesStream:
        return ResponsesStream(result, self)


def _responses_input(raw: list[Any]) -> Any:
    instructions, given_input = raw
    if instructions is None:
        return input_snapshot(given_input)
    return snapshot({"instructions": instructions, "input": strip_base64(given_input)})


_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesStream:
    """Responses events: text deltas as they come; the final event's response wins. A
    stream that ends in ``response.failed`` or an ``error`` event (the SDK raises
    nothing for either) leaves ``failure``, which the watch records as the span's error."""

    __slots__ = ("endpoint", "failure", "final", "result", "texts")

    def __init__(self, result: Result, endpoint: Responses) -> None:
        self.result = result
        self.endpoint = endpoint
        self.texts: list[str] = []
        self.final = False
        self.failure: str | None = None

    def add(self, event: Any) -> Any:
        result = self.result
        if result.first_chunk is None:
            result.first_chunk = _perf()
        try:
            kind = getattr(event, "type", None)
            if kind == "response.output_text.delta":
                self.texts.append(event.delta)
            elif kind in _FINAL_EVENTS:
                response = getattr(event, "response", None)
                if response is not None:
                    self.endpoint.read(response, result)
                    self.final = True
                    if kind == "response.failed":
                        self.failure = _failure(kind, getattr(response, "error", None))
            elif kind == "error":
                self.failure = _failure(kind, event)
            elif kind == "response.created":
                response = getattr(event, "response", None)
                result.model = getattr(response, "model", None)
                result.response_id = getattr(response, "id", None)
        except Exception:
            self.result = unreadable_chunk()
        return event

    def close(self) -> None:
        if not self.final:
            self.result.output = message_output("".join(self.texts) or None, None)


def _failure(kind: str, error: Any) -> str:
    """``"{code}: {message}"`` of a failed response's error or an error event, or the
    event's type when it carries neither."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    text = ": ".join(str(part) for part in (code, message) if part)
    return text or kind


ENDPOINTS: dict[str, Any] = {**_OTHERS, "/responses": Responses()}
