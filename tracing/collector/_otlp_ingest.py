"""An OTLP request body to the records the store keeps and the rejections to report: the
pure half of ``POST /v1/traces`` (no I/O; the route runs it off the event loop)."""

from __future__ import annotations

import attrs

from ._otlp_decode import decode_request
from ._otlp_json import decode_json_request
from ._otlp_map import Invalid, SpanRecord, map_span
from ._otlp_response import PROTOBUF
from ._otlp_span import BadSpan

__all__ = ["Ingest", "read_records"]

_MESSAGES = 5  # rejection messages quoted in partial_success, then a count


@attrs.frozen
class Ingest:
    """The request's accepted spans, in order, and one message per rejected span."""

    records: list[SpanRecord]
    rejected: list[str]

    def error_message(self, extra: list[str] | None = None) -> str:
        """partial_success.error_message: the first few reasons, then how many more."""
        reasons = [*self.rejected, *(extra or [])]
        shown = "; ".join(reasons[:_MESSAGES])
        more = len(reasons) - _MESSAGES
        return f"{shown}; and {more} more" if more > 0 else shown


def read_records(body: bytes, encoding: str) -> Ingest:
    """Decode ``body`` (``PROTOBUF`` or JSON) and map every span.

    Raises:
        DecodeError: the body is not an ``ExportTraceServiceRequest``.
    """
    decoded = decode_request(body) if encoding == PROTOBUF else decode_json_request(body)
    records: list[SpanRecord] = []
    rejected: list[str] = []
    for index, span in enumerate(decoded):
        if isinstance(span, BadSpan):
            rejected.append(f"span {index}: {span.message}")
            continue
        try:
            records.append(map_span(span))
        except Invalid as exc:
            rejected.append(f"span {index} ({span.span_id.hex() or 'no id'}): {exc}")
    return Ingest(records, rejected)
