"""One decoded OTLP span to an ``OtlpRecord``: our fields in wire form, still keyed by
the OTLP ids, which ``_otlp_group`` turns into the store's records.

A root span (no parent) carries the trace's own fields; any other span carries a
wire-form span whose ``parentId`` is resolved when the request's spans are grouped
(its parent may be elsewhere in the request, or not in it). Each record passes the
batch route's per-trace rules (README "The collector and its viewer", "What ingest
accepts") before it is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from tracing._wire import format_time

from ._otlp_attrs import split_attributes
from ._otlp_span import OtlpEvent, OtlpSpan
from ._validate import Rejected, validate_trace

__all__ = ["Invalid", "OtlpRecord", "check_record", "map_span"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ERROR = 2
_KINDS = {2: "server", 3: "client", 4: "producer", 5: "consumer"}
_CHECK_TIME = "1970-01-01T00:00:00.000000Z"


class Invalid(ValueError):
    """The span breaks a rule; the message says which (it goes into partial_success)."""


@attrs.frozen
class OtlpRecord:
    """One accepted span, keyed by its OTLP ids (lowercase hex)."""

    trace_key: str  # 32 hex: the spans of one trace share it
    span_key: str  # 16 hex: a span is stored once per trace
    parent_key: str | None  # 16 hex, None for a root span
    start_us: int
    fields: dict[str, Any]  # wire form: the trace (root, no spans) or the span

    @property
    def is_root(self) -> bool:
        return self.parent_key is None


def _time(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _ids(span: OtlpSpan) -> tuple[str, str, str | None]:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        raise Invalid("traceId must be 16 bytes, not all zero")
    if len(span.span_id) != 8 or not any(span.span_id):
        raise Invalid("spanId must be 8 bytes, not all zero")
    parent = span.parent_span_id
    if parent and len(parent) != 8:
        raise Invalid("parentSpanId must be empty or 8 bytes")
    return span.trace_id.hex(), span.span_id.hex(), parent.hex() if any(parent) else None


def _times(span: OtlpSpan) -> tuple[str, str | None]:
    if span.start_ns == 0:
        raise Invalid("startTimeUnixNano is required")
    if span.end_ns and span.end_ns < span.start_ns:
        raise Invalid("endTimeUnixNano is before startTimeUnixNano")
    end = format_time(_time(span.end_ns)) if span.end_ns else None
    return format_time(_time(span.start_ns)), end


def _error(span: OtlpSpan) -> str | None:
    if span.status_code != _ERROR:
        return None
    if span.status_message:
        return span.status_message
    for event in span.events:
        if event.name == "exception":
            for key in ("exception.message", "exception.type"):
                value = event.attributes.get(key)
                if isinstance(value, str) and value:
                    return value
    return None


def _event(event: OtlpEvent) -> dict[str, Any]:
    time = format_time(_time(event.time_ns)) if event.time_ns else None
    return {"name": event.name, "time": time, "attributes": dict(event.attributes)}


def _otel_metadata(span: OtlpSpan, metadata: dict[str, Any], *, ours: bool, root: bool) -> None:
    """What OpenTelemetry has and our model does not, kept in metadata (``otel.*``)."""
    events = [_event(e) for e in span.events if not (ours and e.name == "exception")]
    if events:
        metadata.setdefault("otel.events", events)
    if ours:
        return
    if span.kind in _KINDS:
        metadata.setdefault("otel.span.kind", _KINDS[span.kind])
    if span.links:
        links = [
            {"traceId": x.trace_id.hex(), "spanId": x.span_id.hex(), "attributes": x.attributes}
            for x in span.links
        ]
        metadata.setdefault("otel.links", links)
    service = span.resource.get("service.name")
    if root and isinstance(service, str):
        metadata.setdefault("service.name", service)


def map_span(span: OtlpSpan) -> OtlpRecord:
    """The record for one span.

    The batch route's rules are applied when the request's spans are grouped into
    traces (``check_record`` finds the span at fault when a trace fails them).

    Raises:
        Invalid: bad ids or times.
    """
    trace_key, span_key, parent_key = _ids(span)
    start, end = _times(span)
    root = parent_key is None
    found = split_attributes(span.attributes, root=root)
    _otel_metadata(span, found.metadata, ours=found.ours, root=root)
    error = _error(span)
    fields: dict[str, Any] = {
        "id": found.stored_id or (trace_key if root else span_key),
        "name": span.name,
        "startTime": start,
        "endTime": end,
        "status": "error" if span.status_code == _ERROR else "ok",
        "error": error,
        "input": found.input,
        "output": found.output,
        "metadata": found.metadata,
        "llmUsage": found.llm_usage,
    }
    if root:
        fields.update(found.trace)
    else:
        fields["parentId"] = None
    return OtlpRecord(trace_key, span_key, parent_key, span.start_ns // 1000, fields)


def check_record(record: OtlpRecord) -> str | None:
    """What the batch route's rules say of this one span (as a trace, or in a trace):
    None when it passes, else why not."""
    if record.is_root:
        wire = record.fields
    else:
        wire = {"id": "x", "name": "x", "startTime": _CHECK_TIME, "spans": [record.fields]}
    checked = validate_trace(wire)
    if isinstance(checked, Rejected):
        return checked.message.removeprefix("span 0 ").removeprefix("trace ")
    return None
