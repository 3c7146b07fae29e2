"""The batch envelope and per-trace validation, turning wire JSON into rows to store.

A rule a trace breaks rejects that trace alone, with a message for ``results``; the
envelope itself failing is the caller's 400. Times are normalised to RFC 3339 ``Z`` with
microseconds and the duration is recomputed from them, so the store sorts and the viewer
scales by one clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import orjson

from tracing._wire import format_time

from ._json import MAX_DEPTH, depth_over, describe, loads
from ._records import MAX_TOKENS, SpanRecord, TraceRecord

__all__ = [
    "MAX_DEPTH",
    "MAX_ID",
    "MAX_NAME",
    "EnvelopeError",
    "Invalid",
    "Rejected",
    "ValidTrace",
    "parse_envelope",
    "validate_trace",
]

MAX_ID = 256
MAX_NAME = 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MAX_INT = MAX_TOKENS
# RFC 3339 section 5.6 (a space for the T allowed, as its note permits); ASCII digits only.
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_TRACE_FIELDS = (
    "description",
    "error",
    "input",
    "output",
    "inputSummary",
    "outputSummary",
    "metadata",
    "tags",
)
_SPAN_FIELDS = ("parentId", "error", "input", "output", "metadata")


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
        data = loads(body)
    except ValueError as exc:
        raise EnvelopeError(f"body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EnvelopeError('body must be a JSON object {"sentAt": ..., "traces": [...]}')
    traces = data.get("traces")
    if not isinstance(traces, list):
        raise EnvelopeError('body must have a "traces" list')
    sent_at = data.get("sentAt")
    if sent_at is not None and parse_rfc3339(sent_at) is None:
        raise EnvelopeError(f'"sentAt" must be an RFC 3339 date-time, got {describe(sent_at)}')
    return traces


def parse_rfc3339(value: Any) -> datetime | None:
    """An RFC 3339 date-time as an aware UTC datetime; None for anything else.

    Fractions beyond microseconds are cut (nanosecond clocks send nine digits); a leap
    second is the microsecond before it; a time that UTC cannot hold (year 1 with a
    positive offset) is not a time either.
    """
    if not isinstance(value, str) or len(value) > 64:
        return None
    found = _RFC3339.fullmatch(value)
    if found is None:
        return None
    whole, fraction, zone = found.groups()
    if whole.endswith(":60"):
        # A leap second (RFC 3339 section 5.7), which datetime cannot hold: read as the
        # last microsecond before it, so order and durations stay right.
        whole, fraction = whole[:-2] + "59", "999999"
    text = whole + ("." + fraction[:6].ljust(6, "0") if fraction else "")
    try:
        return datetime.fromisoformat(text + ("+00:00" if zone in "Zz" else zone)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def validate_trace(raw: Any) -> ValidTrace | Rejected:
    """Check one wire trace against the collector's rules (README "What ingest accepts",
    exactly)."""
    raw_id = raw.get("id") if isinstance(raw, dict) else None
    known_id = raw_id if isinstance(raw_id, str) and _encodable(raw_id) else None
    try:
        if not isinstance(raw, dict):
            raise Invalid("a trace must be a JSON object")
        return _valid_trace(raw)
    except Invalid as exc:
        return Rejected(known_id, str(exc))


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: no store or answer can carry it
        return False
    return True


def _valid_trace(raw: dict[str, Any]) -> ValidTrace:
    trace_id = _text(raw, "id", "trace", MAX_ID, non_empty=True)
    name = _text(raw, "name", "trace", MAX_NAME, non_empty=True)
    start, end = _times(raw, "trace")
    if start is None:
        raise Invalid("trace startTime is required")
    status = raw.get("status")
    if status is None:
        status = "ok"
    elif status not in ("ok", "error"):
        raise Invalid(f"trace status must be 'ok' or 'error', got {describe(status)}")
    _none_too_deep(raw, "trace", skip="spans")
    usage = _usage(raw.get("llmUsage"), "trace")
    spans = _spans(raw.get("spans"))
    doc: dict[str, Any] = {field: raw.get(field) for field in _TRACE_FIELDS}
    doc.update(
        id=trace_id,
        name=name,
        startTime=format_time(start),
        endTime=None if end is None else format_time(end),
        duration=None if end is None else (end - start).total_seconds(),
        status=status,
        llmUsage=usage,
    )
    if doc["metadata"] is None:
        doc["metadata"] = {}
    if doc["tags"] is None:
        doc["tags"] = []
    summary = {key: doc[key] for key in doc if key not in ("input", "output", "metadata")}
    try:
        head, item = orjson.dumps(doc), orjson.dumps(summary)
        records = tuple(_span_record(trace_id, span) for span in spans)
    except (orjson.JSONEncodeError, TypeError) as exc:
        # A lone surrogate, or an integer past 64 bits: valid JSON that cannot be stored.
        raise Invalid(f"trace cannot be stored as JSON: {exc}") from None
    return ValidTrace(
        id=trace_id,
        name=name,
        start_us=_micros(start),
        status=status,
        usage_tokens=min(_tokens(usage), _MAX_INT) if isinstance(usage, dict) else None,
        head=head,
        item=item,
        spans=records,
    )


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


def _span_record(trace_id: str, span: dict[str, Any]) -> SpanRecord:
    """A validated span for the store (its start re-read from the normalised text)."""
    start = span["startTime"]
    return SpanRecord(
        trace_id=trace_id,
        id=span["id"],
        name=span["name"],
        status="error" if span["status"] == "error" else "ok",
        start_us=None if start is None else _micros(datetime.fromisoformat(start)),
        tokens=min(_tokens(span["llmUsage"]), _MAX_INT),
        body=orjson.dumps(span),
    )


def _spans(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid("trace spans must be a list of objects")
    spans: list[dict[str, Any]] = []
    for index, raw in enumerate(value):
        where = f"span {index}"
        if not isinstance(raw, dict):
            raise Invalid(f"{where} must be a JSON object")
        span_id = _text(raw, "id", where, MAX_ID)
        name = _text(raw, "name", where, MAX_NAME)
        start, end = _times(raw, where)
        _none_too_deep(raw, where)
        span = {field: raw.get(field) for field in _SPAN_FIELDS}
        status = raw.get("status")
        span.update(
            id=span_id,
            name=name,
            startTime=None if start is None else format_time(start),
            endTime=None if end is None else format_time(end),
            duration=None if start is None or end is None else (end - start).total_seconds(),
            status="ok" if status is None else status,
            llmUsage=_usage(raw.get("llmUsage"), where),
        )
        if span["metadata"] is None:
            span["metadata"] = {}
        spans.append(span)
    return spans


def _text(
    raw: Mapping[str, Any], field: str, where: str, limit: int, non_empty: bool = False
) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or (non_empty and not value):
        kind = "a non-empty string" if non_empty else "a string"
        raise Invalid(f"{where} {field} must be {kind}")
    if len(value) > limit:
        raise Invalid(f"{where} {field} is {len(value)} characters; at most {limit}")
    return value


def _times(raw: Mapping[str, Any], where: str) -> tuple[datetime | None, datetime | None]:
    """startTime and endTime, each RFC 3339 when present; end not before start."""
    times: list[datetime | None] = []
    for field in ("startTime", "endTime"):
        value = raw.get(field)
        parsed = None if value is None else parse_rfc3339(value)
        if value is not None and parsed is None:
            raise Invalid(f"{where} {field} must be an RFC 3339 date-time, got {describe(value)}")
        times.append(parsed)
    start, end = times
    if start is not None and end is not None and end < start:
        raise Invalid(f"{where} endTime is before its startTime")
    return start, end


def _none_too_deep(raw: dict[str, Any], where: str, skip: str = "") -> None:
    """No field's value nested past MAX_DEPTH: "anywhere in the trace" takes in the
    fields the collector does not store too (a trace is judged as it was sent)."""
    for field, value in raw.items():
        if field != skip and depth_over(value):
            name = field if field.isascii() and field.isidentifier() else describe(field)
            raise Invalid(f"{where} {name} is nested more than {MAX_DEPTH} levels deep")


def _usage(value: Any, where: str) -> Any:
    """llmUsage as sent; only its token counts have a rule (non-negative integers)."""
    if not isinstance(value, dict):
        return value
    for field in ("promptTokens", "completionTokens"):
        count = value.get(field)
        if count is None:
            continue
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise Invalid(f"{where} llmUsage.{field} must be a non-negative integer")
    return value


def _tokens(usage: Any) -> int:
    if not isinstance(usage, dict):
        return 0
    return int(usage.get("promptTokens") or 0) + int(usage.get("completionTokens") or 0)
