"""Floor: ``asyncio.Queue`` + orjson + aiohttp, with no SDK logic.

Per record the producer does the least any tracer must: a random 128-bit id, two
clock reads formatted as RFC 3339, and a dict of the same fields as a trace, put on the
queue (all of it timed per call, like an SDK's ``trace()`` + ``end()``). Four consumer
tasks each take up to 100 records, encode them with ``orjson`` and POST
them to the sink with one shared aiohttp session: the same batch size and concurrency
as this SDK's defaults, and nothing else (no ids, clocks, retries or accounting).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from random import getrandbits
from typing import Any

import aiohttp
import orjson

from ._common import (
    INPUT,
    METADATA,
    MODEL,
    NAME,
    OUTPUT,
    PROVIDER,
    YIELD_EVERY,
    Recorder,
    main,
    rss_now_mb,
)

BATCH, WORKERS = 100, 4
USAGE = {"model": MODEL, "provider": PROVIDER, "promptTokens": 152, "completionTokens": 61}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def make_record() -> dict[str, Any]:
    start = _now()
    return {
        "id": f"{getrandbits(128):032x}",
        "name": NAME,
        "startTime": start,
        "endTime": _now(),
        "status": "ok",
        "input": INPUT,
        "output": OUTPUT,
        "metadata": dict(METADATA),
        "llmUsage": USAGE,
    }


async def body(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    url = f"{sink}/api/traces/batch"
    headers = {"Content-Type": "application/json"}
    done = asyncio.Event()
    delivered = 0

    async with aiohttp.ClientSession() as session:

        async def consume() -> None:
            nonlocal delivered
            while True:
                batch = [await queue.get()]
                while len(batch) < BATCH and not queue.empty():
                    batch.append(queue.get_nowait())
                payload = orjson.dumps({"traces": batch})
                async with session.post(url, data=payload, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"sink answered {response.status}")
                delivered += len(batch)
                if delivered >= n:
                    done.set()

        if DEPTH[0]:
            return await depth(queue, n, consume, done)
        workers = [asyncio.create_task(consume()) for _ in range(WORKERS)]
        clock = time.perf_counter_ns
        add = rec.add
        put = queue.put_nowait
        start = time.perf_counter()
        for i in range(n):
            t0 = clock()
            put(make_record())
            add(clock() - t0)
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        await asyncio.wait_for(done.wait(), 300)
        end = time.perf_counter()
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return {"start": start, "end": end}


async def depth(
    queue: asyncio.Queue[dict[str, Any]],
    n: int,
    consume: Callable[[], Awaitable[None]],
    done: asyncio.Event,
) -> dict[str, Any]:
    """Queue n records with no consumer running (memory at that depth), then drain them."""
    before = rss_now_mb()
    for _ in range(n):
        queue.put_nowait(make_record())
    queued_mb = rss_now_mb() - before
    start = time.perf_counter()
    workers = [asyncio.create_task(consume()) for _ in range(WORKERS)]
    await asyncio.wait_for(done.wait(), 300)
    end = time.perf_counter()
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return {"start": start, "end": end, "queued_mb": queued_mb, "queued_at_shutdown": n}


DEPTH = [False]

if __name__ == "__main__":
    import sys

    DEPTH[0] = "--variant" in sys.argv and sys.argv[sys.argv.index("--variant") + 1] == "depth"
    name = "floor: queue 10,000 then drain" if DEPTH[0] else "floor: Queue+orjson+aiohttp"
    main(name, body, asyncio_native=True)
