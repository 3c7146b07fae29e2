"""multiprocessing (fork) started from inside a running loop, with a batch in flight.

argv: endpoint. Prints a JSON report on the last line.
"""

import asyncio
import json
import multiprocessing
import os
import sys
import warnings

import attrs

from tracing import AsyncTracing, Trace

warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads warns on 3.12+
tracer = AsyncTracing(
    endpoint=sys.argv[1],
    flush_at=2,
    flush_interval=0,
    retry_backoff=0.001,
    retry_backoff_max=0.01,
)


def make(prefix: str, n: int) -> list[Trace]:
    pid = os.getpid()
    return [Trace(prefix, id=f"{prefix}-{pid}-{i}", metadata={"pid": pid}) for i in range(n)]


def child(conn: "multiprocessing.connection.Connection") -> None:
    start = attrs.asdict(tracer.stats())

    async def main() -> dict[str, object]:
        items = make("child", 4)
        for item in items:
            tracer.enqueue(item)
        stats = await tracer.shutdown()
        return {"child_ids": [t.id for t in items], "child_stats": attrs.asdict(stats)}

    report = asyncio.run(main())
    report["child_start"] = start
    conn.send(report)
    conn.close()


async def parent() -> dict[str, object]:
    items = make("parent", 5)
    for item in items:  # flush_at=2: batches are in flight (the server is slow)
        tracer.enqueue(item)
    # Fork only once a batch is in flight. The SDK has no event for it: a bounded poll.
    async with asyncio.timeout(20):
        while not tracer.stats().in_flight:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
    in_flight_at_fork = tracer.stats().in_flight
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe()
    process = ctx.Process(target=child, args=(there,))
    process.start()
    report = await asyncio.get_running_loop().run_in_executor(None, here.recv)
    await asyncio.get_running_loop().run_in_executor(None, process.join)
    assert process.exitcode == 0
    stats = await tracer.shutdown()
    return {
        **report,
        "parent_ids": [t.id for t in items],
        "parent_stats": attrs.asdict(stats),
        "parent_in_flight_at_fork": in_flight_at_fork,
    }


print(json.dumps(asyncio.run(parent())))
