"""The FastAPI service ``test_workers.py`` serves with several worker processes.

Each response and each request's trace carry the serving process's pid, so the test can
tell the workers apart. With ``WORKERS_TEST_PARENT_TRACE=1`` a trace is queued when the
module is imported: under ``gunicorn --preload`` that is the master, before it forks, and
no worker may ever send it. Traces go to ``TRACING_ENDPOINT``.
"""

from __future__ import annotations

import asyncio
import os

from fastapi import FastAPI

from tracing import AsyncTracing, current_trace
from tracing.integrations.fastapi import TracingMiddleware, lifespan

tracer = AsyncTracing(flush_at=20, flush_interval=0.2)

if os.environ.get("WORKERS_TEST_PARENT_TRACE") == "1":
    parent = tracer.trace("parent-import", metadata={"pid": os.getpid()})
    tracer.enqueue(parent)  # no loop yet: queued, and delivered by this process at exit

app = FastAPI(lifespan=lifespan(tracer))
app.add_middleware(TracingMiddleware, tracer=tracer)


@tracer.observe()
async def work(n: int) -> int:
    await asyncio.sleep(0.005)
    return n * 2


@app.get("/work/{n}")
async def get_work(n: int) -> dict[str, int]:
    trace = current_trace()
    assert trace is not None
    trace.metadata["pid"] = os.getpid()
    return {"pid": os.getpid(), "n": n, "result": await work(n)}
