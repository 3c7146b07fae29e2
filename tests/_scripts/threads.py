"""16 worker threads call enqueue() while the event loop runs; shutdown delivers all."""

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

from tracing import AsyncTracing, Trace

tracer = AsyncTracing(endpoint=sys.argv[1], flush_at=30, flush_interval=0.05)


def work(n: int) -> None:
    for i in range(50):
        tracer.enqueue(Trace("threaded", id=f"w{n}-{i}"))


async def main() -> None:
    await tracer.start()
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=16) as pool:
        await asyncio.gather(*(loop.run_in_executor(pool, work, n) for n in range(16)))
    stats = await tracer.shutdown()
    print(f"sent={stats.sent} failed={stats.failed} dropped={stats.dropped}")


asyncio.run(main())
