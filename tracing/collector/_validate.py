"""The batch envelope and per-trace validation, turning wire JSON into rows to store.

A rule a trace breaks rejects that trace alone, with a message for ``results``; the
envelope itself failing is the caller's 400. Times are normalised to RFC 3339 ``Z`` with
microseconds and the duration is recomputed from them, so the store sorts and the viewer
scales by one clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import orjson

from tracing._wire import format_time, parse_time

from ._records import MAX_TOKENS, SpanRecord, TraceRecord

__all__ = [
    "MAX_ID",
    "MAX_NAME",
    "MAX_SPANS",
    "EnvelopeError",
    "Invalid",
    "Rejected",
    "ValidTrace",
    "parse_envelope",
    "validate_trace",
]

MAX_ID = 256
MAX_NAME = 1024
MAX_SPANS = 10_000
MAX_TAGS = 1_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MAX_INT = MAX_TOKENS
_TEXT_FIELDS = ("description", "error", "inputSummary", "outputSummary")
_SPAN_TEXT_FIELDS = ("error",)
_TOKEN_FIELDS = ("promptTokens", "completionTokens", "apiCallsCount")


class EnvelopeError(ValueError):
    """The body is not ``{"sentAt": ..., "traces": [...]}``."""


class Invalid(ValueError):
    """One trace broke a rule; the message says which."""


# A trace that passed every rule, ready for the store.
ValidTrace = TraceRecord


@attrs.frozen
class Rejected:
    """A trace that broke a rule; ``id`` is None when it had no usable id."""

    id: str | None
    message: str


def parse_envelope(body: bytes) -> list[Any]:
    """The ``traces`` list of a batch body.

    Raises:
        EnvelopeError: not JSON, not an object, no ``traces`` list, or a bad ``sentAt``.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EnvelopeError('body must be a JSON object {"sentAt": ..., "traces": [...]}')
    traces = data.get("traces")
    if not isinstance(traces, list):
        raise EnvelopeError('body must have a "traces" list')
    sent_at = data.get("sentAt")
    if sent_at is not None:
        try:
            parse_time(sent_at)
        except (ValueError, TypeError):
            raise EnvelopeError('"sentAt" must be an RFC 3339 date-time') from None
    return traces


def validate_trace(raw: Any) -> ValidTrace | Rejected:
    """Check one wire trace against the collector's rules."""
    raw_id = raw.get("id") if isinstance(raw, dict) else None
    known_id = raw_id if isinstance(raw_id, str) else None
    try:
        if not isinstance(raw, dict):
            raise Invalid("a trace must be a JSON object")
        return _valid_trace(raw)
    except Invalid as exc:
        return Rejected(known_id, str(exc))


def _valid_trace(raw: dict[str, Any]) -> ValidTrace:
    trace_id = _text_id(raw, "id", "trace")
    name = _name(raw, "trace")
    start, end = _times(raw, "trace", required=True)
    assert start is not None  # required=True
    status = _status(raw, "trace")
    for field in _TEXT_FIELDS:
        _optional_text(raw, field, "trace")
    metadata = _metadata(raw, "trace")
    tags = raw.get("tags")
    if tags is None:
        tags = []
    elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise Invalid("trace tags must be a list of strings")
    elif len(tags) > MAX_TAGS:
        raise Invalid(f"trace has {len(tags)} tags; at most {MAX_TAGS} are accepted")
    usage = _usage(raw.get("llmUsage"), "trace")
    spans = _spans(raw.get("spans"))
    doc = {
        "id": trace_id,
        "name": name,
        "description": raw.get("description"),
        "startTime": format_time(start),
        "endTime": None if end is None else format_time(end),
        "duration": None if end is None else (end - start).total_seconds(),
        "status": status,
        "error": raw.get("error"),
        "input": raw.get("input"),
        "output": raw.get("output"),
        "inputSummary": raw.get("inputSummary"),
        "outputSummary": raw.get("outputSummary"),
        "metadata": metadata,
        "tags": tags,
        "llmUsage": usage,
    }
    summary = {key: doc[key] for key in doc if key not in ("input", "output", "metadata")}
    try:
        head, item = orjson.dumps(doc), orjson.dumps(summary)
        records = tuple(_span_record(trace_id, span) for span in spans)
    except (orjson.JSONEncodeError, TypeError) as exc:
        # orjson refuses integers beyond 64 bits, which json.loads elsewhere might allow.
        raise Invalid(f"trace cannot be stored as JSON: {exc}") from None
    return ValidTrace(
        id=trace_id,
        name=name,
        start_us=_micros(start),
        status=status,
        usage_tokens=None if usage is None else min(_tokens(usage), _MAX_INT),
        head=head,
        item=item,
        spans=records,
    )


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


def _span_record(trace_id: str, span: dict[str, Any]) -> SpanRecord:
    start = span["startTime"]
    return SpanRecord(
        trace_id=trace_id,
        id=span["id"],
        name=span["name"],
        status=span["status"],
        start_us=None if start is None else _micros(parse_time(start)),
        tokens=min(_tokens(span["llmUsage"]), _MAX_INT),
        body=orjson.dumps(span),
    )


def _spans(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid("trace spans must be a list of objects")
    if len(value) > MAX_SPANS:
        raise Invalid(f"trace has {len(value)} spans; at most {MAX_SPANS} are accepted")
    spans: list[dict[str, Any]] = []
    for index, raw in enumerate(value):
        where = f"span {index}"
        if not isinstance(raw, dict):
            raise Invalid(f"{where} must be a JSON object")
        span_id = _text_id(raw, "id", where)
        name = _name(raw, where)
        start, end = _times(raw, where, required=False)
        parent = raw.get("parentId")
        if parent is not None and not isinstance(parent, str):
            raise Invalid(f"{where} parentId must be a string or null")
        for field in _SPAN_TEXT_FIELDS:
            _optional_text(raw, field, where)
        duration = None if start is None or end is None else (end - start).total_seconds()
        spans.append(
            {
                "id": span_id,
                "parentId": parent,
                "name": name,
                "startTime": None if start is None else format_time(start),
                "endTime": None if end is None else format_time(end),
                "duration": duration,
                "status": _status(raw, where),
                "error": raw.get("error"),
                "input": raw.get("input"),
                "output": raw.get("output"),
                "metadata": _metadata(raw, where),
                "llmUsage": _usage(raw.get("llmUsage"), where),
            }
        )
    return spans


def _text_id(raw: Mapping[str, Any], field: str, where: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value:
        raise Invalid(f"{where} {field} must be a non-empty string")
    if len(value) > MAX_ID:
        raise Invalid(f"{where} {field} is {len(value)} characters; at most {MAX_ID}")
    return value


def _name(raw: Mapping[str, Any], where: str) -> str:
    value = raw.get("name")
    if not isinstance(value, str) or not value:
        raise Invalid(f"{where} name must be a non-empty string")
    if len(value) > MAX_NAME:
        raise Invalid(f"{where} name is {len(value)} characters; at most {MAX_NAME}")
    return value


def _time(raw: Mapping[str, Any], field: str, where: str) -> datetime | None:
    value = raw.get(field)
    if value is None:
        return None
    try:
        return parse_time(value)
    except (ValueError, TypeError):
        raise Invalid(f"{where} {field} must be an RFC 3339 date-time, got {value!r:.80}") from None


def _times(
    raw: Mapping[str, Any], where: str, *, required: bool
) -> tuple[datetime | None, datetime | None]:
    start = _time(raw, "startTime", where)
    end = _time(raw, "endTime", where)
    if start is None and (required or end is not None):
        raise Invalid(f"{where} startTime is required")
    if start is not None and end is not None and end < start:
        raise Invalid(f"{where} endTime is before its startTime")
    return start, end


def _status(raw: Mapping[str, Any], where: str) -> str:
    value = raw.get("status")
    if value is None:
        return "ok"
    if value not in ("ok", "error"):
        raise Invalid(f"{where} status must be 'ok' or 'error', got {value!r:.40}")
    return str(value)


def _optional_text(raw: Mapping[str, Any], field: str, where: str) -> None:
    value = raw.get(field)
    if value is not None and not isinstance(value, str):
        raise Invalid(f"{where} {field} must be a string or null")


def _metadata(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    value = raw.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{where} metadata must be an object")
    return value


def _usage(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(f"{where} llmUsage must be an object or null")
    for field in ("model", "provider"):
        if value.get(field) is not None and not isinstance(value[field], str):
            raise Invalid(f"{where} llmUsage.{field} must be a string")
    counts: dict[str, int] = {}
    for field in _TOKEN_FIELDS:
        count = value.get(field, 0 if field != "apiCallsCount" else 1)
        if count is None:
            count = 0
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise Invalid(f"{where} llmUsage.{field} must be a non-negative integer")
        if count > _MAX_INT:
            raise Invalid(f"{where} llmUsage.{field} is out of range")
        counts[field] = count
    return {"model": value.get("model"), "provider": value.get("provider"), **counts}


def _tokens(usage: Mapping[str, Any] | None) -> int:
    if usage is None:
        return 0
    return int(usage["promptTokens"]) + int(usage["completionTokens"])
