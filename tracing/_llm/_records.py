"""The records of an LLM call: its span, and the trace of its own of a call made outside
any trace, built in one step each.

The same records ``tracer.trace(name)`` and ``trace.span(name)`` make (``_models``' fast
constructors ``start_trace``/``open_span``, checked against the same field lists), as the
``_lazy`` classes: the fields written late (times, metadata, input, output, usage) are left unset
here, and the properties read an unset one as None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .._context import _span_var
from .._models import Span, Trace, _new_object
from ._lazy import LATE_SPAN_FIELDS, LlmSpan, OwnTrace

if TYPE_CHECKING:
    from .._client import AsyncTracing
    from ._call import LlmCall

__all__ = ["open_child_span", "open_own_trace"]


def open_own_trace(name: str, tracer: AsyncTracing, call: LlmCall) -> None:
    """``trace = tracer.trace(name)`` and its one span at once, for a name already
    checked: the trace of its own of an LLM call outside any trace, stored into
    ``call.trace`` and ``call.span`` here (no tuple to build and unpack).

    No ids and no clock read here: both ids are drawn when one of them is first read
    (``_lazy``: the two halves of one 256-bit draw, by the encoder, the mask, sampling, a
    user), and ``call.start_ns`` is both start times. This runs once per call right after
    the SDK's own work has pushed this code out of the CPU caches, where each distinct C
    facility touched costs microseconds (benchmarks/RESULTS.md, "LLM client
    instrumentation"). The span has no parent: no span can belong to a trace made now.
    """
    trace: OwnTrace = _new_object(OwnTrace)
    trace.name = name
    trace._id_slot = None  # the raw slot: drawn when first read (_lazy)
    trace.status = "ok"
    trace.error = None
    trace.input = None
    trace.output = None
    trace.metadata = {}
    trace.llm_usage = None
    trace.description = None
    trace.input_summary = None
    trace.output_summary = None
    trace._tags_slot = None  # the raw slot under another name: no descriptor call (_lazy)
    trace._tracer = tracer
    trace._ended = False
    trace._queued = False
    trace._masked = False
    trace._wire = None
    trace._spool = None
    trace._token = None
    trace._llm = call  # a plain slot: a specialised store, not a descriptor call
    span: LlmSpan = _new_object(LlmSpan)  # made in place, as in open_child_span
    span.name = name
    span.status = "ok"
    span.error = None
    span.parent_id = None
    span._token = None
    span._id_slot = None  # the raw slots: drawn when first read (_lazy)
    span._trace_id_slot = None
    span._llm = call
    trace.spans = [span]  # OwnTrace.spans is the raw slot (_lazy)
    call.trace = trace
    call.span = span


def open_child_span(trace: Trace, name: str, call: LlmCall) -> Span:
    """``trace.span(name)`` (``_models.open_span``) for an LLM call inside a trace."""
    current = _span_var.get()
    trace_id = trace.id
    # The span made in place, as in open_own_trace (deliberately the same stores: a
    # shared helper is one more Python frame per call, on code that runs cold).
    span: LlmSpan = _new_object(LlmSpan)
    span.name = name
    span._id_slot = None  # the raw slot: drawn when first read (_lazy)
    span.status = "ok"
    span.error = None
    span.parent_id = current.id if current is not None and current._trace_id == trace_id else None
    span._trace_id_slot = trace_id  # the raw slot: LlmSpan._trace_id is a property
    span._token = None
    span._llm = call
    spans = trace._spans_slot  # type: ignore[attr-defined]  # the raw slot (_lazy)
    if spans is None:
        trace._spans_slot = [span]  # type: ignore[attr-defined]
    else:
        spans.append(span)
    return span


_TRACE_SET = (  # id, start_time, end_time: _lazy
    "name status error input output metadata llm_usage description input_summary "
    "output_summary tags spans _tracer _ended _queued _masked _wire _spool _token"
)
_SPAN_SET = "name status error parent_id _trace_id _token"  # metadata: write_start
if sorted([*_TRACE_SET.split(), "id", "start_time", "end_time"]) != sorted(
    field.name for field in attrs.fields(Trace)
) or sorted({*_SPAN_SET.split(), "id", *LATE_SPAN_FIELDS}) != sorted(
    field.name for field in attrs.fields(Span)
):  # pragma: no cover
    raise RuntimeError("open_own_trace() and open_child_span() must set every field: update them")
