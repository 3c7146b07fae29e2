"""A trace read back from the spool, rebuilt from its wire JSON into a full ``Trace``.

The JSON protocol posts the stored bytes as they are and needs only the id; the OTLP
protocol encodes from the model's fields, so a replayed trace must have them all again.
"""

from __future__ import annotations

from typing import Any

import orjson

from ._models import LlmUsage, Span, Trace
from ._wire import parse_time

__all__ = ["trace_from_wire"]


def _usage(data: Any) -> LlmUsage | None:
    if not isinstance(data, dict):
        return None
    return LlmUsage(
        str(data.get("model") or ""),
        str(data.get("provider") or ""),
        prompt_tokens=int(data.get("promptTokens") or 0),
        completion_tokens=int(data.get("completionTokens") or 0),
        api_calls_count=int(data.get("apiCallsCount") or 1),
    )


def _time(value: Any) -> Any:
    return None if value is None else parse_time(value)


def _common(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": data["id"],
        "start_time": parse_time(data["startTime"]),
        "end_time": _time(data.get("endTime")),
        "status": data.get("status") or "ok",
        "error": data.get("error"),
        "input": data.get("input"),
        "output": data.get("output"),
        "metadata": data.get("metadata") or {},
        "llm_usage": _usage(data.get("llmUsage")),
    }


def trace_from_wire(payload: bytes) -> Trace:
    """The ``Trace`` whose wire form is ``payload`` (raises on anything malformed)."""
    data = orjson.loads(payload)
    spans = [
        Span(span["name"], parent_id=span.get("parentId"), **_common(span))
        for span in data.get("spans") or ()
    ]
    return Trace(
        data["name"],
        description=data.get("description"),
        input_summary=data.get("inputSummary"),
        output_summary=data.get("outputSummary"),
        tags=list(data.get("tags") or ()),
        spans=spans,
        **_common(data),
    )
