"""Driver: this SDK, ``trace()`` + ``await end()`` (or ``enqueue()`` of ready traces).

Defaults except ``endpoint`` and ``max_queue_size`` (N, so nothing is dropped); the
``gzip`` variant adds ``compression="gzip"``, the ``otlp`` variant ``protocol="otlp"``
(OTLP/HTTP protobuf to the sink's ``/v1/traces``, which counts the spans it parses).
``drain`` measures ``shutdown()`` with 10,000 traces queued (the default queue bound) and
nothing sent yet.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tracing import AsyncTracing, LlmUsage, Trace

from ._common import (
    INPUT,
    METADATA,
    MODEL,
    NAME,
    OUTPUT,
    PREPARED,
    PROVIDER,
    YIELD_EVERY,
    Recorder,
    main,
    rss_now_mb,
)

USAGE = LlmUsage(MODEL, PROVIDER, prompt_tokens=152, completion_tokens=61)


async def trace_end(sink: str, n: int, rec: Recorder, **options: Any) -> dict[str, Any]:
    tracer = AsyncTracing(endpoint=sink, max_queue_size=max(n, 10_000), **options)
    await tracer.start()
    clock = time.perf_counter_ns
    add = rec.add
    start = time.perf_counter()
    for i in range(n):
        t0 = clock()
        trace = tracer.trace(NAME, input=INPUT, metadata=METADATA)
        await trace.end(output=OUTPUT, llm_usage=USAGE)
        add(clock() - t0)
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    made = time.perf_counter()  # the last trace is made; the flush below sends the rest
    await tracer.flush()
    end = time.perf_counter()
    stats = await tracer.shutdown()
    return {
        "start": start,
        "made": made,
        "end": end,
        "sdk_sent": stats.sent,
        "sdk_dropped": stats.dropped,
    }


def prepare(n: int) -> list[Trace] | None:
    if VARIANT[0] != "enqueue":
        return None
    return [
        Trace(NAME, input=INPUT, output=OUTPUT, metadata=dict(METADATA), llm_usage=USAGE)
        for _ in range(n)
    ]


async def enqueue(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    tracer = AsyncTracing(endpoint=sink, max_queue_size=max(n, 10_000))
    await tracer.start()
    traces: list[Trace] = PREPARED[0]
    clock = time.perf_counter_ns
    add = rec.add
    start = time.perf_counter()
    for i, trace in enumerate(traces):
        t0 = clock()
        tracer.enqueue(trace)
        add(clock() - t0)
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    await tracer.flush()
    end = time.perf_counter()
    stats = await tracer.shutdown()
    return {"start": start, "end": end, "sdk_sent": stats.sent, "sdk_dropped": stats.dropped}


async def drain(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    """Queue n (<= 10,000, the default bound) traces without yielding, then time shutdown()."""
    tracer = AsyncTracing(endpoint=sink)
    await tracer.start()
    before = rss_now_mb()
    for _ in range(n):
        trace = tracer.trace(NAME, input=INPUT, metadata=METADATA)
        await trace.end(output=OUTPUT, llm_usage=USAGE)
    queued = tracer.stats().queue_size
    queued_mb = rss_now_mb() - before
    start = time.perf_counter()
    stats = await tracer.shutdown()
    end = time.perf_counter()
    return {
        "start": start,
        "end": end,
        "queued_at_shutdown": queued,
        "queued_mb": queued_mb,
        "sdk_sent": stats.sent,
        "sdk_dropped": stats.dropped,
    }


async def body(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    variant = VARIANT[0]
    if variant == "enqueue":
        return await enqueue(sink, n, rec)
    if variant == "gzip":
        return await trace_end(sink, n, rec, compression="gzip")
    if variant == "otlp":
        return await trace_end(sink, n, rec, protocol="otlp")
    if variant == "drain":
        return await drain(sink, n, rec)
    return await trace_end(sink, n, rec)


VARIANT = [""]

if __name__ == "__main__":
    import sys

    if "--variant" in sys.argv:
        VARIANT[0] = sys.argv[sys.argv.index("--variant") + 1]
    main(f"tracing {VARIANT[0] or 'trace+end'}", body, asyncio_native=True, prepare=prepare)
