"""Traces and spans are freed by reference counting: no reference cycles, so a service's
traced requests never leave garbage for the cyclic GC (whose full passes walk the whole
heap) to find."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from tracing import AsyncTracing


async def test_trace_with_nested_spans_is_freed_without_the_cyclic_gc() -> None:
    tracer = AsyncTracing(enabled=False)
    gc.disable()
    try:
        trace = tracer.trace("request", metadata={"k": "v"})
        with trace.span("outer", input={"a": [1, 2]}) as outer, trace.span("inner") as inner:
            inner.end(output={"b": {"c": 1}})
        assert inner.parent_id == outer.id, "nesting still works"
        await trace.end(output="done")
        refs: list[weakref.ref[Any]] = [weakref.ref(trace), weakref.ref(outer), weakref.ref(inner)]
        del trace, outer, inner
        assert [ref() for ref in refs] == [None, None, None]
    finally:
        gc.enable()


async def test_observed_calls_leave_no_cyclic_garbage() -> None:
    tracer = AsyncTracing(enabled=True, endpoint="http://127.0.0.1:1", flush_at=1000)

    @tracer.observe()
    async def step(n: int) -> dict[str, list[int]]:
        return {"n": [n]}

    @tracer.observe()
    async def handler(n: int) -> int:
        return len(await step(n)) + len(await step(n + 1))

    gc.collect()
    gc.disable()
    try:
        for n in range(20):
            await handler(n)
        tracer._queue._items.clear()  # the queued traces, dropped as the flusher would
        assert gc.collect() == 0, "nothing was left for the cyclic GC"
    finally:
        gc.enable()
        await tracer.shutdown(timeout=1)
