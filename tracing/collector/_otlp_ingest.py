"""An OTLP request body to what the store takes and the rejections to report: the pure
half of ``POST /v1/traces`` (no I/O; the route runs it off the event loop)."""

from __future__ import annotations

import attrs

from ._otlp_decode import decode_request
from ._otlp_group import group_records
from ._otlp_json import decode_json_request
from ._otlp_map import Invalid, OtlpRecord, map_span
from ._otlp_response import PROTOBUF
from ._otlp_span import BadSpan
from ._records import SpanRecord, TraceRecord

__all__ = ["Ingest", "read_records", "read_request"]

_MESSAGES = 5  # rejection messages quoted in partial_success, then a count


@attrs.frozen
class Ingest:
    """A request ready for ``TraceStore.add_spans``, and one message per rejected span."""

    roots: list[TraceRecord]
    spans: list[SpanRecord]
    rejected: list[str]
    traces: int

    @property
    def error_message(self) -> str:
        """partial_success.error_message: the first few reasons, then how many more."""
        shown = "; ".join(self.rejected[:_MESSAGES])
        more = len(self.rejected) - _MESSAGES
        return f"{shown}; and {more} more" if more > 0 else shown


def read_records(body: bytes, encoding: str) -> tuple[list[OtlpRecord], list[str]]:
    """Decode ``body`` (``PROTOBUF`` or JSON) and map every span: the records, in order,
    and a message per span that was refused.

    Raises:
        DecodeError: the body is not an ``ExportTraceServiceRequest``.
    """
    decoded = decode_request(body) if encoding == PROTOBUF else decode_json_request(body)
    records: list[OtlpRecord] = []
    rejected: list[str] = []
    for index, span in enumerate(decoded):
        if isinstance(span, BadSpan):
            rejected.append(f"span {index}: {span.message}")
            continue
        try:
            records.append(map_span(span))
        except Invalid as exc:
            rejected.append(f"span {index} ({span.span_id.hex() or 'no id'}): {exc}")
    return records, rejected


def read_request(body: bytes, encoding: str) -> Ingest:
    """``read_records``, then grouped into the store's records.

    Raises:
        DecodeError: the body is not an ``ExportTraceServiceRequest``.
    """
    records, rejected = read_records(body, encoding)
    grouped = group_records(records)
    return Ingest(grouped.roots, grouped.spans, rejected + grouped.rejected, grouped.traces)
