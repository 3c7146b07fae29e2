"""A trace of its own for one operation: the trace and its one span made at once.

For an operation that starts outside any trace (an LLM call): the same records
``tracer.trace(name)`` and ``trace.span(name)`` make, built in one step. Kept beside
``_models``' fast constructors (``start_trace``, ``open_span``) and checked against the
same field lists.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from ._fields import _getrandbits, _now
from ._models import Span, Trace, _new_object, _set_spans, _set_tags

if TYPE_CHECKING:
    from ._client import AsyncTracing

__all__ = ["open_own_trace"]


def open_own_trace(
    name: str, tracer: AsyncTracing, input: Any, metadata: dict[str, Any]
) -> tuple[Trace, Span]:
    """``trace = tracer.trace(name)`` and ``open_span(trace, name, input, metadata)`` at
    once, for a name already checked: a trace of its own for one operation (an LLM call
    outside any trace), with that operation as its one span.

    One clock read for both start times and one random draw for both ids (the two halves
    of 256 random bits): this runs once per call right after the caller's own work has
    pushed the SDK's code out of the CPU caches, where each distinct C facility touched
    costs microseconds (benchmarks/RESULTS.md, "LLM client instrumentation"). The span
    has no parent: no span can belong to a trace made just now.
    """
    now = _now(UTC)
    ids = _getrandbits(256).to_bytes(32, "little").hex()
    trace: Trace = _new_object(Trace)
    trace.name = name
    trace_id = trace.id = ids[:32]
    trace.start_time = now
    trace.end_time = None
    trace.status = "ok"
    trace.error = None
    trace.input = None
    trace.output = None
    trace.metadata = {}
    trace.llm_usage = None
    trace.description = None
    trace.input_summary = None
    trace.output_summary = None
    _set_tags(trace, None)
    trace._tracer = tracer
    trace._ended = False
    trace._queued = False
    trace._masked = False
    trace._wire = None
    trace._spool = None
    trace._token = None
    span: Span = _new_object(Span)
    span.name = name
    span.id = ids[32:]
    span.start_time = now
    span.end_time = None
    span.status = "ok"
    span.error = None
    span.input = input
    span.output = None
    span.metadata = metadata
    span.llm_usage = None
    span.parent_id = None
    span._trace_id = trace_id
    span._token = None
    _set_spans(trace, [span])
    return trace, span
