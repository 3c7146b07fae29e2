"""The FastAPI service ``test_uvicorn.py`` serves with a real uvicorn process.

Every request carries ``?rid=``; the dependency stores it in the request's trace
metadata and every decorated step records it as input, so the test can prove that no
trace holds another request's spans. Traces go to ``TRACING_ENDPOINT``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException

from tracing import AsyncTracing, current_span, current_trace
from tracing.integrations.fastapi import TracingMiddleware, lifespan

tracer = AsyncTracing(flush_at=50, flush_interval=0.2)


@asynccontextmanager
async def own_lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    async with tracer.trace("app-shutdown"):  # made after the last request: must arrive
        pass


app = FastAPI(lifespan=lifespan(tracer, own_lifespan))
app.add_middleware(TracingMiddleware, tracer=tracer)


def request_id(rid: str) -> str:
    trace = current_trace()
    assert trace is not None, "the request's trace is current in dependencies"
    trace.metadata["rid"] = rid
    return rid


Rid = Annotated[str, Depends(request_id)]


@tracer.observe()
async def fetch(rid: str, part: int) -> str:
    await asyncio.sleep(0)
    span = current_span()
    assert span is not None
    assert span.name == "fetch"
    return f"{rid}:{part}"


@tracer.observe()
async def assemble(rid: str) -> list[str]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(fetch(rid, part)) for part in range(3)]
    return [task.result() for task in tasks]


@tracer.observe()
def lookup(rid: str, user_id: str) -> str:
    return f"{rid}:{user_id}"


@app.get("/items/{item_id}")
async def get_item(item_id: int, rid: Rid) -> dict[str, object]:
    return {"item_id": item_id, "parts": await assemble(rid)}


@app.get("/fail/{kind}")
async def fail(kind: str, rid: Rid) -> None:
    await assemble(rid)
    if kind == "http":
        raise HTTPException(status_code=503, detail="unavailable")
    raise RuntimeError(f"boom {rid}")


users = APIRouter(prefix="/users")


@users.get("/{user_id}")
def get_user(user_id: str, rid: Rid) -> dict[str, str]:
    trace = current_trace()
    assert trace is not None, "the request's trace is current in sync handlers"
    return {"user": lookup(rid, user_id)}


app.include_router(users, prefix="/v1")
