"""Two successive asyncio.run() calls with one tracer; the first never shuts down.

argv: endpoint, then "flush" (the first run flushes), "leave" (it leaves traces queued
and a batch in flight when asyncio.run() cancels everything; the second run sends them)
"closed" (like "leave", but the first loop is closed by hand, its tasks still pending) or
"idle" (the first loop, closed by hand, leaves the flusher waiting for work on it).
Prints the trace ids on stdout and, on stderr, ``first run ended: queued=N in_flight=M``.
"""

import asyncio
import sys

from tracing import AsyncTracing

tracer = AsyncTracing(
    endpoint=sys.argv[1],
    flush_at=3,
    flush_interval=0,
    retry_backoff=0.001,
    retry_backoff_max=0.01,
)


async def first() -> None:
    for i in range(1 if sys.argv[2] == "idle" else 5):
        async with tracer.trace(f"first{i}") as trace:
            print(trace.id)
    if sys.argv[2] == "flush":
        await tracer.flush()  # delivered on this loop
    if sys.argv[2] in ("leave", "closed"):
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
    for i in range(5):
        async with tracer.trace(f"second{i}") as trace:
            print(trace.id)
    stats = await tracer.shutdown()
    assert stats.sent == (6 if sys.argv[2] == "idle" else 10), stats
    assert stats.queue_size == stats.in_flight == 0, stats


if sys.argv[2] in ("closed", "idle"):
    loop = asyncio.new_event_loop()
    loop.run_until_complete(first())
    loop.close()
else:
    asyncio.run(first())
asyncio.run(second())
