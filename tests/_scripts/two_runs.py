"""Two successive asyncio.run() calls with one tracer; the first never shuts down.

argv: endpoint, then "flush" (the first run flushes), "leave" (it leaves traces queued
and a batch in flight when asyncio.run() cancels everything; the second run sends them)
"closed" (like "leave", but the first loop is closed by hand, its tasks still pending),
"collected" (like "closed", and the garbage collector finalises the first loop's tasks
while the second loop's batch is being sent: a metadata value whose ``str()``, which the
encoder calls in the send task, runs ``gc.collect()``) or "idle" (the first loop, closed
by hand, leaves the flusher waiting for work on it) or "stopped" (like "leave", but the
first loop is only stopped, never closed, and runs again after the second run: the tasks
it still held must end there cleanly, not run a second time).
Prints the trace ids on stdout and, on stderr, ``first run ended: queued=N in_flight=M``.
"""

import asyncio
import gc
import sys

from tracing import AsyncTracing

tracer = AsyncTracing(
    endpoint=sys.argv[1],
    flush_at=3,
    flush_interval=0,
    retry_backoff=0.001,
    retry_backoff_max=0.01,
)


class CollectsWhenEncoded:
    """Runs the garbage collector when the encoder turns it into a string."""

    collected = 0

    def __str__(self) -> str:
        CollectsWhenEncoded.collected += gc.collect()
        return "collected"


async def first() -> None:
    for i in range(1 if sys.argv[2] == "idle" else 5):
        async with tracer.trace(f"first{i}") as trace:
            print(trace.id)
    if sys.argv[2] == "flush":
        await tracer.flush()  # delivered on this loop
    if sys.argv[2] in ("leave", "closed", "collected", "stopped"):
        # End this run only once a batch is in flight (the server is slow): a bounded poll,
        # as the SDK has no event for it.
        async with asyncio.timeout(20):
            while not tracer.stats().in_flight:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
    if sys.argv[2] == "idle":
        for _ in range(3):
            await asyncio.sleep(0)  # the flusher starts and waits on this loop
    stats = tracer.stats()
    print(
        f"first run ended: queued={stats.queue_size} in_flight={stats.in_flight}", file=sys.stderr
    )


async def second() -> None:
    collects = sys.argv[2] == "collected"
    for i in range(5):
        metadata = {"value": CollectsWhenEncoded()} if collects and i == 0 else None
        async with tracer.trace(f"second{i}", metadata=metadata) as trace:
            print(trace.id)
    stats = await tracer.shutdown()
    if sys.argv[2] == "collected":
        # The state this mode is about: the collector found the first loop's garbage.
        assert CollectsWhenEncoded.collected > 0, "nothing was collected"
    assert stats.sent == (6 if sys.argv[2] == "idle" else 10), stats
    assert stats.queue_size == stats.in_flight == 0, stats


if sys.argv[2] == "stopped":
    loop = asyncio.new_event_loop()
    loop.run_until_complete(first())
    asyncio.run(second())
    before = tracer.stats()
    pending = asyncio.all_tasks(loop)
    assert pending, "the first loop must still hold the tracer's tasks"
    loop.run_until_complete(asyncio.wait(pending, timeout=10))  # it runs again
    assert all(task.done() for task in pending), pending
    assert tracer.stats() == before, (before, tracer.stats())  # nothing counted twice
    loop.close()
    sys.exit(0)
if sys.argv[2] in ("closed", "collected", "idle"):
    loop = asyncio.new_event_loop()
    loop.run_until_complete(first())
    loop.close()
else:
    asyncio.run(first())
asyncio.run(second())
