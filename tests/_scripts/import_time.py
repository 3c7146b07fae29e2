"""A tracer constructed at import time, with no event loop, used in asyncio.run()."""

import asyncio

from tracing import AsyncTracing

tracer = AsyncTracing(flush_interval=0, retry_backoff=0.001, retry_backoff_max=0.01)


async def main() -> None:
    for i in range(3):
        async with tracer.trace(f"t{i}") as trace:
            print(trace.id)
    stats = await tracer.shutdown()
    assert stats.sent == 3, stats


asyncio.run(main())
