"""Child for ``test_fsync``: ``python -m tests.spool._fsync_child URL SPOOL_DIR MODE PAUSE``.

Five groups of 40 traces, each made a group of its own by ``flush()`` (which waits for
the writer's cycle and the server's answer), ``PAUSE`` seconds apart (a workload's pace,
so that a run can outlast "interval"'s one-second sync), then a clean shutdown.
"""

from __future__ import annotations

import asyncio
import sys

from tracing import AsyncTracing, Trace


async def main(url: str, spool_dir: str, mode: str, pause: str) -> None:
    tracer = AsyncTracing(endpoint=url, spool_dir=spool_dir, spool_fsync=mode, flush_interval=0)
    await tracer.start()
    for group in range(5):
        for index in range(40):
            tracer.enqueue(Trace("fsync", id=f"f-{group}-{index}", input="x" * 200))
        await tracer.flush()
        await asyncio.sleep(float(pause))
    stats = await tracer.shutdown(timeout=10)
    print(stats.sent, flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
