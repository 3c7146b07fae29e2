"""OTLP request bodies built with the official ``opentelemetry-proto`` classes: spans as
any OpenTelemetry SDK sends them, and traces of this SDK encoded by the fixed
``protocol="otlp"`` mapping (API.md "OTLP"), independently of the SDK's own encoder."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tracing import Span as SdkSpan
from tracing import Trace

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def any_value(value: Any) -> AnyValue:
    """A Python value as an AnyValue: dicts as kvlists, lists as arrays, None as empty."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))


def key_values(attributes: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def ns(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1) * 1000


def request(
    spans: Iterable[Span],
    resource: Mapping[str, Any] | None = None,
    scope: str = "test-scope",
) -> ExportTraceServiceRequest:
    """One resource, one scope, these spans."""
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=key_values(resource or {"service.name": "svc"})),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope), spans=list(spans))],
            )
        ]
    )


def trace_id_of(trace_id: str) -> bytes:
    if _HEX32.fullmatch(trace_id):
        return bytes.fromhex(trace_id)
    return hashlib.sha256(trace_id.encode()).digest()[:16]


def span_id_of(span_id: str) -> bytes:
    if _HEX32.fullmatch(span_id):
        return bytes.fromhex(span_id)[:8]
    return hashlib.sha256(span_id.encode()).digest()[:8]


def _value_attributes(prefix: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {f"{prefix}.value": value, f"{prefix}.mime_type": "text/plain"}
    return {
        f"{prefix}.value": orjson.dumps(value).decode(),
        f"{prefix}.mime_type": "application/json",
    }


def _record_attributes(record: Trace | SdkSpan) -> dict[str, Any]:
    attributes = {
        **_value_attributes("input", record.input),
        **_value_attributes("output", record.output),
    }
    usage = record.llm_usage
    if usage is not None:
        attributes.update(
            {
                "gen_ai.request.model": usage.model,
                "gen_ai.provider.name": usage.provider,
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
                "tracing.llm.api_calls_count": usage.api_calls_count,
            }
        )
    for key, value in record.metadata.items():
        attributes[f"metadata.{key}"] = value
    return attributes


def _status(record: Trace | SdkSpan) -> tuple[Status, list[Span.Event]]:
    if record.status != "error":
        return Status(), []
    message = record.error or ""
    # As the SDK: an error without a message is an exception event without attributes.
    found = (
        {} if record.error is None else {"exception.type": "Error", "exception.message": message}
    )
    event = Span.Event(
        name="exception",
        time_unix_nano=ns(record.end_time or record.start_time),
        attributes=key_values(found),
    )
    return Status(code=Status.STATUS_CODE_ERROR, message=message), [event]


def sdk_spans(trace: Trace) -> list[Span]:
    """The root span and descendants this SDK sends for ``trace`` with protocol="otlp"."""
    trace_id = trace_id_of(trace.id)
    root_id = span_id_of(trace.id)
    attributes = _record_attributes(trace)
    attributes["tracing.trace.id"] = trace.id
    if trace.tags:
        attributes["tracing.tags"] = list(trace.tags)
    for key, field in (
        ("tracing.description", trace.description),
        ("tracing.input_summary", trace.input_summary),
        ("tracing.output_summary", trace.output_summary),
    ):
        if field is not None:
            attributes[key] = field
    status, events = _status(trace)
    out = [
        Span(
            trace_id=trace_id,
            span_id=root_id,
            name=trace.name,
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=ns(trace.start_time),
            end_time_unix_nano=ns(trace.end_time or trace.start_time),
            attributes=key_values(attributes),
            status=status,
            events=events,
        )
    ]
    for span in trace.spans:
        span_attributes = {**_record_attributes(span), "tracing.span.id": span.id}
        status, events = _status(span)
        parent = span_id_of(span.parent_id) if span.parent_id else root_id
        out.append(
            Span(
                trace_id=trace_id,
                span_id=span_id_of(span.id),
                parent_span_id=parent,
                name=span.name,
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=ns(span.start_time),
                end_time_unix_nano=ns(span.end_time or span.start_time),
                attributes=key_values(span_attributes),
                status=status,
                events=events,
            )
        )
    return out


def sdk_request(traces: Sequence[Trace]) -> ExportTraceServiceRequest:
    spans = [span for trace in traces for span in sdk_spans(trace)]
    return request(spans, scope="tracing")
