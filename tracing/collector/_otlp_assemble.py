"""The spans of one OTLP trace, however many requests they came in, to one wire trace.

The span with no parent is the trace: its name, times, status, input, output and the
rest. Until it arrives, the trace is named after its earliest span and spans the times of
the spans it has, with status "ok" and no input or output; its id is the hex trace id.
A parent link is resolved through the parent's own record, so a child that arrived before
its parent points at the parent's stored id once the parent is there (until then, at the
parent's hex span id); a link to the root becomes ``parentId: null``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._otlp_map import SpanRecord
from ._validate import Rejected, ValidTrace, validate_trace

__all__ = ["assemble", "assemble_valid"]

_SPAN_KEYS = (
    "name",
    "startTime",
    "endTime",
    "status",
    "error",
    "input",
    "output",
    "metadata",
    "llmUsage",
)


def _order(record: SpanRecord) -> tuple[int, str]:
    return record.start_us, record.span_key


def _span(record: SpanRecord) -> dict[str, Any]:
    if not record.is_root:
        return dict(record.fields)
    # A second span without a parent: a top-level span under its own hex id.
    return {"id": record.span_key, "parentId": None, **{k: record.fields[k] for k in _SPAN_KEYS}}


def assemble(records: Sequence[SpanRecord]) -> dict[str, Any]:
    """The wire trace (as the batch route receives one) of records sharing a trace key.

    Spans keep the order of ``records`` (the order they arrived in); of several spans
    without a parent, the earliest is the root.
    """
    if not records:
        raise ValueError("records must not be empty")
    earliest = min(records, key=_order)
    root = min((r for r in records if r.is_root), key=_order, default=None)
    by_key = {r.span_key: r for r in records}
    spans: list[dict[str, Any]] = []
    for record in records:
        if record is root:
            continue
        span = _span(record)
        parent = record.parent_key
        if parent is not None:
            if root is not None and parent == root.span_key:
                span["parentId"] = None
            elif parent in by_key:
                span["parentId"] = _span(by_key[parent])["id"]
            else:
                span["parentId"] = parent  # not here yet: its hex id, as other SDKs have it
        spans.append(span)
    if root is not None:
        return {**root.fields, "spans": spans}
    ends = [s["endTime"] for s in spans if s["endTime"] is not None]
    return {
        "id": earliest.trace_key,
        "name": earliest.fields["name"],
        "startTime": earliest.fields["startTime"],
        "endTime": max(ends) if ends else None,
        "status": "ok",
        "spans": spans,
    }


def assemble_valid(records: Sequence[SpanRecord]) -> ValidTrace | Rejected:
    """``assemble`` checked and normalised by the batch route's rules, ready to store."""
    return validate_trace(assemble(records))
