"""A request's ``OtlpRecord``s, grouped by OTLP trace id, to what the store takes:
a ``TraceRecord`` for each trace whose root span came in this request (its other spans
inside it), and ``SpanRecord``s for spans whose root did not.

Ids and parent links are resolved within the request: a trace's stored id is its root's
(``tracing.trace.id``, else the hex trace id), a span's parent is the stored id of the
parent's record, and a link to the root becomes ``parentId: null``. A span whose root
is not in the request belongs to the hex trace id, which the store keeps as a
provisional trace until the root arrives; one whose parent is not in the request keeps
the parent's hex span id (what other SDKs' spans have anyway) until the store finds that
parent (``_otlp_links``: a link to the root becomes null, one to a span stored under
another id, as this SDK's spans are, takes that id; each root carries its span id as
``root_span``, each span its ``otlp_id`` and ``otlp_parent``). The same span id twice in
a request is kept once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ._otlp_map import OtlpRecord, check_record
from ._records import SpanRecord, TraceRecord
from ._validate import Rejected, validate_trace

__all__ = ["Grouped", "group_records"]

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


@attrs.frozen
class Grouped:
    """What one request stores, and the spans refused when put together."""

    roots: list[TraceRecord]
    spans: list[SpanRecord]
    rejected: list[str]
    traces: int  # how many traces the request touched


def _order(record: OtlpRecord) -> tuple[int, str]:
    return record.start_us, record.span_key


def _span(record: OtlpRecord) -> dict[str, Any]:
    if not record.is_root:
        return dict(record.fields)
    # A second span without a parent: a top-level span under its own hex id.
    return {"id": record.span_key, "parentId": None, **{k: record.fields[k] for k in _SPAN_KEYS}}


# Per span of a trace, in order: (its hex span id when stored under another id, the hex
# parent id the store still has to find): SpanRecord.otlp_id and .otlp_parent.
Links = list[tuple[str | None, str | None]]


def _resolve(
    records: Sequence[OtlpRecord],
) -> tuple[OtlpRecord | None, list[dict[str, Any]], Links]:
    """The trace's root (the earliest parentless span), its other spans, linked, and
    their ``Links``."""
    root = min((r for r in records if r.is_root), key=_order, default=None)
    by_key = {r.span_key: r for r in records}
    spans: list[dict[str, Any]] = []
    links: Links = []
    for record in records:
        if record is root:
            continue
        span = _span(record)
        parent = record.parent_key
        waiting = None
        if parent is not None:
            if root is not None and parent == root.span_key:
                span["parentId"] = None
            elif parent in by_key:
                span["parentId"] = _span(by_key[parent])["id"]
            else:
                span["parentId"] = waiting = parent
        spans.append(span)
        links.append((record.span_key if span["id"] != record.span_key else None, waiting))
    return root, spans, links


def _one_trace(trace_key: str, records: list[OtlpRecord]) -> TraceRecord | Rejected:
    root, spans, links = _resolve(records)
    if root is not None:
        checked = validate_trace({**root.fields, "spans": spans})
    else:
        # No root here: the spans alone, checked as a stand-in trace holding them.
        start = min(records, key=_order).fields["startTime"]
        checked = validate_trace({"id": trace_key, "name": "-", "startTime": start, "spans": spans})
    if isinstance(checked, Rejected):
        return checked
    linked = tuple(
        attrs.evolve(span, otlp_id=own, otlp_parent=waiting) if own or waiting else span
        for span, (own, waiting) in zip(checked.spans, links, strict=True)
    )
    return attrs.evolve(checked, spans=linked)


def _checked(
    trace_key: str, records: list[OtlpRecord], rejected: list[str]
) -> tuple[TraceRecord, list[OtlpRecord]] | None:
    """The trace checked whole, with the records it holds; when that fails, without the
    spans that fail alone (each named in ``rejected``); None when nothing is left."""
    checked = _one_trace(trace_key, records)
    if not isinstance(checked, Rejected):
        return checked, records
    kept: list[OtlpRecord] = []
    for record in records:
        problem = check_record(record)
        if problem is None:
            kept.append(record)
        else:
            rejected.append(f"span {record.span_key}: {problem}")
    if kept and len(kept) < len(records):
        checked = _one_trace(trace_key, kept)
    if isinstance(checked, Rejected):  # a rule of the whole trace (too many spans)
        rejected += [f"trace {trace_key}: {checked.message}"] * len(kept)
        return None
    return checked, kept


def group_records(records: Sequence[OtlpRecord]) -> Grouped:
    """Group by trace, resolve ids and links, and check each trace as the batch route does."""
    by_trace: dict[str, dict[str, OtlpRecord]] = {}
    for record in records:
        by_trace.setdefault(record.trace_key, {}).setdefault(record.span_key, record)
    roots: list[TraceRecord] = []
    spans: list[SpanRecord] = []
    rejected: list[str] = []
    for trace_key, unique in by_trace.items():
        found = _checked(trace_key, list(unique.values()), rejected)
        if found is None:
            continue
        trace, kept = found
        root = min((r for r in kept if r.is_root), key=_order, default=None)
        if root is not None:
            alias = trace_key if trace_key != trace.id else None
            roots.append(attrs.evolve(trace, root_span=root.span_key, otlp_trace=alias))
        else:
            spans += trace.spans
    return Grouped(roots, spans, rejected, len(by_trace))
