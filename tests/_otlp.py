"""Reading what the SDK sends in OTLP mode with the official ``opentelemetry-proto``
classes (a dev dependency only): the request, its spans, their attributes as Python."""

from __future__ import annotations

import gzip
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

__all__ = [
    "PbSpan",
    "attributes",
    "decode_request",
    "partial_success_body",
    "root_ids",
    "spans_of",
    "value_of",
]


def decode_request(raw: bytes, encoding: str | None = None) -> ExportTraceServiceRequest:
    """Parse a request body as received (gunzipped first when ``encoding`` is gzip)."""
    if encoding == "gzip":
        raw = gzip.decompress(raw)
    request = ExportTraceServiceRequest()
    request.ParseFromString(raw)
    return request


def spans_of(request: ExportTraceServiceRequest) -> list[PbSpan]:
    return [
        span
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(item) for item in value.array_value.values]
    if kind is None:
        return None
    return getattr(value, kind)


def attributes(span: Any) -> dict[str, Any]:
    """A span's (or resource's, or event's) attributes as a dict; duplicate keys fail."""
    out: dict[str, Any] = {}
    for kv in span.attributes:
        assert kv.key not in out, f"attribute {kv.key} appears twice"
        out[kv.key] = value_of(kv.value)
    return out


def root_ids(request: ExportTraceServiceRequest) -> list[str]:
    """The original trace ids (``tracing.trace.id``) of the root spans, in order."""
    return [
        attributes(span)["tracing.trace.id"]
        for span in spans_of(request)
        if not span.parent_span_id
    ]


def partial_success_body(rejected: int, message: str) -> bytes:
    response = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
    )
    body: bytes = response.SerializeToString()
    return body
