"""A queue-consuming worker that stops cleanly on SIGTERM or Ctrl-C.

    python -m tracing.collector &        # the receiver, on 127.0.0.1:7070
    python examples/worker.py            # then Ctrl-C, or: kill -TERM <pid>

On the signal it takes no new job, lets the current one finish (pass abandon=True to
cancel it instead), delivers every completed trace within 10 seconds, and exits with 0.
Traces go to TRACING_ENDPOINT (default http://127.0.0.1:7070).
"""

from __future__ import annotations

import asyncio
import random
import sys

from tracing import AsyncTracing
from tracing.integrations.worker import Stop, run_worker

tracer = AsyncTracing()


@tracer.observe()
async def handle(job: int) -> str:
    await asyncio.sleep(random.uniform(0.1, 0.5))  # the real work
    return f"job {job} done"


async def consume(stop: Stop) -> None:
    jobs: asyncio.Queue[int] = asyncio.Queue()  # in real life: Redis, SQS, a database...
    for job in range(1_000):
        jobs.put_nowait(job)
    async for job in stop.take(jobs.get):  # ends when SIGTERM/SIGINT arrives
        print(await handle(job), flush=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(run_worker(consume, tracer=tracer, timeout=10)))
