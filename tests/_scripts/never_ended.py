"""Traces started with tracer.trace() and dropped without end(): the process must say so
on stderr (no logging configured: Python's last-resort handler prints WARNINGs)."""

import asyncio
import gc

from tracing import AsyncTracing, Trace

tracer = AsyncTracing(endpoint="http://127.0.0.1:9", flush_interval=0, sample_rate=0.5)


def forget(i: int) -> None:
    tracer.trace(f"forgotten-{i}", id=f"lost-{i}")  # no end(), no async with


async def main() -> None:
    for i in range(3):
        forget(i)
    cycle = tracer.trace("in-a-cycle", id="lost-cycle")
    cycle.metadata["self"] = cycle  # only the cycle collector frees it
    del cycle
    gc.collect()
    async with tracer.trace("ended", id="fine-1"):
        pass
    Trace("built-directly", id="fine-2")  # not the tracer's: not its business
    tracer.enqueue(tracer.trace("enqueued", id="fine-3"))  # ended by enqueue (or sampled out)
    await tracer.shutdown(timeout=0.5)
    print("done", flush=True)


asyncio.run(main())
