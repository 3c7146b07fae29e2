"""A queue worker run by ``test_worker.py``: ``python worker_script.py MODE``.

MODE is ``finish``, ``abandon``, ``grace``, ``twice`` or ``usr1`` (``finish`` stopped by
SIGUSR1, given as ``signals=``). Jobs are quick, except job 20, which is still running
when the test sends its signal. ``idle`` has three jobs only: the worker then waits in
``take()`` for a fourth when the signal comes. ``raise``: ``main`` raises after job 5.
It prints ``started <trace id> <job>`` when a job starts and ``done <trace id>`` once the
job's trace is complete; nothing is sent before shutdown (``flush_at`` is never reached),
so delivery is all on the drain.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from tracing import AsyncTracing, current_trace
from tracing.integrations.worker import Stop, run_worker

MODE = sys.argv[1]
SLOW_JOB = 20

tracer = AsyncTracing(flush_at=10_000, flush_interval=0)


@tracer.observe()
async def handle(job: int, stop: Stop) -> str:
    trace = current_trace()
    assert trace is not None
    print(f"started {trace.id} {job}", flush=True)
    if job == SLOW_JOB:
        if MODE == "grace":
            await asyncio.Event().wait()  # never finishes: the grace period ends it
        if MODE == "twice":
            await stop.wait()
            print("stopping", flush=True)
            await asyncio.Event().wait()  # ignores the stop: only a second signal ends it
        await stop.wait()  # still running when the signal arrives
    await asyncio.sleep(0)
    return trace.id


async def consume(stop: Stop) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for job in range(3 if MODE == "idle" else 1000):
        queue.put_nowait(job)
    async for job in stop.take(queue.get):
        trace_id = await handle(job, stop)
        print(f"done {trace_id}", flush=True)
        if MODE == "raise" and job == 5:
            raise RuntimeError("the worker broke after job 5")


if __name__ == "__main__":
    code = asyncio.run(
        run_worker(
            consume,
            tracer=tracer,
            abandon=MODE == "abandon",
            grace=0.2 if MODE == "grace" else None,
            timeout=10,
            signals=(signal.SIGUSR1,) if MODE == "usr1" else (signal.SIGTERM, signal.SIGINT),
        )
    )
    print(f"exit {code}", flush=True)
    sys.exit(code)
