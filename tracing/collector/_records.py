"""What a store keeps: a trace's own fields and its spans, each already in wire JSON.

A trace is stored as one row (what the list shows and sorts by) and one row per span,
so that a trace can be assembled from spans that arrive over several requests (OTLP):
a span whose trace is not known yet creates a *provisional* trace row, which the trace's
root completes when it comes. The stores splice the JSON pieces back together with the
helpers here, so that no store parses JSON on the read path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import orjson

from tracing._wire import format_time

__all__ = [
    "MAX_TOKENS",
    "SpanRecord",
    "TraceRecord",
    "assemble",
    "provisional_head",
    "provisional_item",
    "span_tokens",
    "tally",
    "whole_trace_keys",
    "with_totals",
]

MAX_TOKENS = 2**63 - 1  # a signed 64-bit column on every store
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@attrs.frozen
class SpanRecord:
    """One validated span of trace ``trace_id``, stored once by ``(trace_id, id)``.

    ``body`` is the span's wire object (``{"id": ..., "parentId": ..., ...}``) as stored
    and served; the other fields are what the store indexes or sums.
    """

    trace_id: str
    id: str
    name: str
    status: str  # "ok" | "error"
    start_us: int | None  # microseconds since the Unix epoch, None when not given
    tokens: int  # promptTokens + completionTokens of its llmUsage (0 without)
    body: bytes
    # OTLP (see ``_otlp_links``): the span's hex span id when it is stored under another
    # id (this SDK's ``tracing.span.id``), and the hex span id of a parent that was not
    # in its request, until the store finds that parent and links the span to its id.
    otlp_id: str | None = None
    otlp_parent: str | None = None


@attrs.frozen
class TraceRecord:
    """One validated trace: its own fields (from the SDK's trace, or an OTLP root span)
    and the spans that came with it.

    ``head`` is the trace's wire object without ``spans``; ``item`` is its entry in the
    trace list (``head`` without ``input``, ``output`` and ``metadata``). Neither carries
    ``totalTokens`` or ``spanCount``: the store keeps those as counters, because spans
    of the trace may arrive later.
    """

    id: str
    name: str
    start_us: int
    status: str
    usage_tokens: int | None  # the trace's own llmUsage tokens; None: sum of the spans
    head: bytes
    item: bytes
    spans: tuple[SpanRecord, ...] = ()
    # OTLP: the root span's id (16 hex). Spans of this trace stored in other requests
    # that name it as their parent are top-level spans (``parentId`` null).
    root_span: str | None = None
    # OTLP: the hex trace id its spans carry, when it is not ``id`` (our SDK's non-hex
    # trace ids): spans stored under it before the root came move into this trace.
    otlp_trace: str | None = None

    @property
    def span_count(self) -> int:
        return len(self.spans)

    @property
    def total_tokens(self) -> int:
        return self.usage_tokens if self.usage_tokens is not None else span_tokens(self)

    @property
    def summary(self) -> bytes:
        """The list entry as served: ``item`` with ``totalTokens`` and ``spanCount``."""
        return with_totals(self.item, self.total_tokens, self.span_count)

    @property
    def document(self) -> bytes:
        """The trace as served by ``GET /api/traces/{id}``, spans included."""
        return assemble(self.head, [s.body for s in self.spans])


def span_tokens(trace: TraceRecord) -> int:
    """The tokens of a trace's spans, summed (capped at MAX_TOKENS)."""
    return min(sum(s.tokens for s in trace.spans), MAX_TOKENS)


def with_totals(item: bytes, total_tokens: int, span_count: int) -> bytes:
    """A list entry with its counters: ``{..., "totalTokens": T, "spanCount": N}``."""
    return b'%s,"totalTokens":%d,"spanCount":%d}' % (item[:-1], total_tokens, span_count)


def assemble(head: bytes, spans: Sequence[bytes]) -> bytes:
    """A trace document: ``head`` with ``"spans": [...]`` in the order given."""
    return head[:-1] + b',"spans":[' + b",".join(spans) + b"]}"


def whole_trace_keys(span_ids: Sequence[str]) -> list[str]:
    """The storage keys of the spans of one whole trace: the span id, except that a
    repeated id gets ``id + NUL + index``.

    A whole trace is stored once by its id, so its spans need no de-duplication; a trace
    that (validly) repeats a span id keeps every span. Spans arriving piecemeal are
    keyed by their id alone, which is what makes a re-sent span stored once.
    """
    seen: set[str] = set()
    keys: list[str] = []
    for index, span_id in enumerate(span_ids):
        keys.append(span_id if span_id not in seen else f"{span_id}\x00{index}")
        seen.add(span_id)
    return keys


def tally(spans: Iterable[SpanRecord], now_us: int) -> dict[str, tuple[Any, ...]]:
    """What newly stored spans add to each trace: ``trace id -> (name, start_us, status,
    tokens, count)``, where name and start are the earliest span's (the stand-ins of a
    provisional trace; a span without a start counts as starting at ``now_us``) and
    status is "error" when any of them failed."""
    counts: dict[str, list[Any]] = {}
    for span in spans:
        start = span.start_us if span.start_us is not None else now_us
        entry = counts.setdefault(span.trace_id, [span.name, start, "ok", 0, 0])
        if start < entry[1]:
            entry[0], entry[1] = span.name, start
        if span.status == "error":
            entry[2] = "error"
        entry[3] = min(entry[3] + span.tokens, MAX_TOKENS)
        entry[4] += 1
    return {trace_id: tuple(entry) for trace_id, entry in counts.items()}


def _time(start_us: int) -> str:
    return format_time(_EPOCH + timedelta(microseconds=start_us))


def provisional_item(trace_id: str, name: str, start_us: int, status: str) -> bytes:
    """The list entry of a trace whose root has not arrived: the earliest span's name
    and start stand in until it does."""
    return orjson.dumps(
        {
            "id": trace_id,
            "name": name,
            "description": None,
            "startTime": _time(start_us),
            "endTime": None,
            "duration": None,
            "status": status,
            "error": None,
            "inputSummary": None,
            "outputSummary": None,
            "tags": [],
            "llmUsage": None,
        }
    )


def provisional_head(trace_id: str, name: str, start_us: int, status: str) -> bytes:
    """The document head of a trace whose root has not arrived (see provisional_item)."""
    head = orjson.loads(provisional_item(trace_id, name, start_us, status))
    head.update(input=None, output=None, metadata={})
    return orjson.dumps(head)
