"""TracingMiddleware and lifespan() in process, through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, HTTPException, WebSocket
from fastapi.responses import StreamingResponse
from starlette.responses import PlainTextResponse
from starlette.routing import Route, Router
from starlette.types import Message

from tracing import AsyncTracing, Trace, current_trace
from tracing.integrations.fastapi import TracingMiddleware, lifespan

from .conftest import Recorder


def _app(tracer: AsyncTracing) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TracingMiddleware, tracer=tracer)
    seen: list[Trace | None] = []
    app.state.seen = seen

    def dependency() -> None:
        seen.append(current_trace())

    @app.get("/items/{item_id}", dependencies=[Depends(dependency)])
    async def item(item_id: int) -> dict[str, int]:
        seen.append(current_trace())
        return {"id": item_id}

    @app.get("/sync")
    def sync_handler() -> None:
        seen.append(current_trace())

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("crashed")

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise HTTPException(status_code=503)

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(status_code=404)

    router = APIRouter(prefix="/api")

    @router.get("/users/{user_id}")
    async def user(user_id: str) -> str:
        return user_id

    app.include_router(router, prefix="/v2")
    sub = FastAPI()

    @sub.get("/things/{thing_id}")
    async def thing(thing_id: str) -> str:
        return thing_id

    app.mount("/sub", sub)
    app.mount("/tenants/{tenant}", sub)
    app.mount("/plain", Router([Route("/x/{y}", lambda request: PlainTextResponse("x"))]))
    app.mount("/static", PlainTextResponse("static"))
    return app


CASES = [
    ("GET", "/items/3", "GET /items/{item_id}", 200, "ok"),
    ("GET", "/sync", "GET /sync", 200, "ok"),
    ("GET", "/crash", "GET /crash", 500, "error"),
    ("GET", "/unavailable", "GET /unavailable", 503, "error"),
    ("GET", "/missing", "GET /missing", 404, "ok"),
    ("GET", "/v2/api/users/ann", "GET /v2/api/users/{user_id}", 200, "ok"),
    ("GET", "/sub/things/9", "GET /sub/things/{thing_id}", 200, "ok"),
    ("GET", "/tenants/acme/things/9", "GET /tenants/{tenant}/things/{thing_id}", 200, "ok"),
    ("GET", "/plain/x/1", "GET /plain/x/{y}", 200, "ok"),
    ("GET", "/static/css/a.css", "GET /static/{path}", 200, "ok"),
    ("POST", "/items/3", "POST /items/{item_id}", 405, "ok"),
    ("GET", "/nowhere/1", "GET /nowhere/1", 404, "ok"),
    ("GET", "/sub/nowhere", "GET /sub/nowhere", 404, "ok"),
]

UNMATCHED = {"/nowhere/1", "/sub/nowhere"}


@pytest.mark.parametrize(("method", "path", "name", "code", "status"), CASES)
async def test_request_trace_names_metadata_and_status(
    tracer: AsyncTracing,
    recorder: Recorder,
    method: str,
    path: str,
    name: str,
    code: int,
    status: str,
) -> None:
    """Each request is one trace named by method and route template, with OTel metadata."""
    transport = httpx.ASGITransport(app=_app(tracer), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.request(method, path)
    assert response.status_code == code
    await tracer.flush()
    (trace,) = recorder.received
    assert trace["name"] == name
    assert trace["status"] == status
    expected: dict[str, Any] = {"http.request.method": method, "http.response.status_code": code}
    if path not in UNMATCHED:
        expected["http.route"] = name.split(" ", 1)[1]
    assert trace["metadata"] == expected
    if path == "/crash":
        assert trace["error"] == "crashed"


async def test_trace_is_current_in_handlers_and_dependencies(tracer: AsyncTracing) -> None:
    """Dependencies, async and sync handlers all see the request's trace as current."""
    app = _app(tracer)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/items/1")
        await client.get("/sync")
    first_dep, first_handler, sync_seen = app.state.seen
    assert first_dep is not None
    assert first_dep is first_handler
    assert first_dep.name == "GET /items/{item_id}"
    assert sync_seen is not None
    assert sync_seen is not first_dep
    assert current_trace() is None


async def test_background_tasks_see_the_requests_trace(
    tracer: AsyncTracing, recorder: Recorder
) -> None:
    """A BackgroundTasks job runs with the request's trace current; its spans land in it."""
    app = FastAPI()
    app.add_middleware(TracingMiddleware, tracer=tracer)
    seen: list[Trace | None] = []

    @tracer.observe("after-response")
    def after_response(n: int) -> int:
        seen.append(current_trace())
        return n

    @app.get("/jobs/{n}")
    async def job(n: int, tasks: BackgroundTasks) -> dict[str, int]:
        seen.append(current_trace())
        tasks.add_task(after_response, n)
        return {"n": n}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/jobs/7")).json() == {"n": 7}
    handler_trace, background_trace = seen
    assert handler_trace is not None
    assert background_trace is handler_trace
    await tracer.flush()
    (trace,) = recorder.received
    assert trace["name"] == "GET /jobs/{n}"
    assert [(s["name"], s["output"]) for s in trace["spans"]] == [("after-response", 7)]


async def test_unhandled_exception_propagates(tracer: AsyncTracing, recorder: Recorder) -> None:
    """The middleware records an unhandled exception and lets it propagate unchanged."""
    transport = httpx.ASGITransport(app=_app(tracer))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match="crashed"):
            await client.get("/crash")
    await tracer.flush()
    assert recorder.received[0]["metadata"]["http.response.status_code"] == 500


async def test_disabled_tracer_passes_requests_through(recorder: Recorder) -> None:
    """With enabled=False the middleware only forwards; nothing is current or sent."""
    tracer = AsyncTracing(endpoint=recorder.url, enabled=False)
    app = _app(tracer)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/items/2")).json() == {"id": 2}
    assert app.state.seen == [None, None]
    assert recorder.received == []


def test_middleware_needs_a_tracer() -> None:
    """A tracer that is not an AsyncTracing is refused with ValueError."""
    with pytest.raises(ValueError, match="tracer"):
        TracingMiddleware(FastAPI(), tracer=object())  # type: ignore[arg-type]


async def test_lifespan_wraps_inner_and_delivers_its_shutdown_traces(
    recorder: Recorder,
) -> None:
    """SDK starts before inner and shuts down after it; inner's state passes through."""
    tracer = AsyncTracing(endpoint=recorder.url, flush_at=10_000, flush_interval=0)
    order: list[str] = []

    @asynccontextmanager
    async def inner(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        order.append(f"inner start, tracer {tracer!r}")
        yield {"db": "connected"}
        async with tracer.trace("closing-db"):
            order.append("inner stop")

    app = FastAPI(lifespan=lifespan(tracer, inner))
    async with lifespan(tracer, inner)(app) as state:
        assert state == {"db": "connected"}
        assert "state=running" in order[0]
    assert order[1] == "inner stop"
    assert [t["name"] for t in recorder.received] == ["closing-db"]
    assert "state=closed" in repr(tracer)


async def test_lifespan_without_inner_starts_and_stops(recorder: Recorder) -> None:
    """lifespan(tracer) alone starts the SDK with the app and drains it at the end."""
    tracer = AsyncTracing(endpoint=recorder.url, flush_at=10_000, flush_interval=0)
    app = FastAPI(lifespan=lifespan(tracer))
    async with app.router.lifespan_context(app) as state:
        assert state is None
        assert "state=running" in repr(tracer)
        tracer.enqueue(Trace("during"))
    assert [t["name"] for t in recorder.received] == ["during"]
    assert tracer.stats().sent == 1


async def test_error_after_the_response_started_keeps_the_sent_status(
    tracer: AsyncTracing, recorder: Recorder
) -> None:
    """A stream that fails midway: the status sent (200) is kept, the trace is an error."""
    app = FastAPI()
    app.add_middleware(TracingMiddleware, tracer=tracer)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        raise RuntimeError("stream broke")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(chunks())

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/stream")
    await tracer.flush()
    (trace,) = recorder.received
    assert trace["metadata"]["http.response.status_code"] == 200
    assert (trace["status"], trace["error"]) == ("error", "stream broke")


async def test_websockets_pass_through_untraced(tracer: AsyncTracing, recorder: Recorder) -> None:
    """Only HTTP requests are traced; a websocket connection is forwarded untouched."""
    app = FastAPI()
    app.add_middleware(TracingMiddleware, tracer=tracer)
    seen: list[Trace | None] = []

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        seen.append(current_trace())
        await socket.accept()
        await socket.close()

    sent: list[Message] = []
    messages = iter([{"type": "websocket.connect"}])

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "root_path": "",
        "headers": [],
        "query_string": b"",
        "scheme": "ws",
        "server": ("test", 80),
        "subprotocols": [],
    }
    await app(scope, receive, send)
    await tracer.flush()
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert seen == [None]
    assert recorder.received == []


async def test_the_request_context_does_not_leak_past_the_middleware(
    tracer: AsyncTracing, recorder: Recorder
) -> None:
    """Called in a context with a current span, the handler sees no span (the request's
    trace starts clean); a span the handler leaves open stays inside the request; and the
    caller's trace and span are back afterwards."""
    from tracing import current_span

    app = FastAPI()
    app.add_middleware(TracingMiddleware, tracer=tracer)
    seen: list[object] = []

    @app.get("/leaky")
    async def leaky() -> str:
        seen.append(current_span())
        trace = current_trace()
        assert trace is not None
        trace.span("left open").__enter__()  # never exited
        return "ok"

    async def call() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/leaky")).status_code == 200

    await call()  # no current span outside: the open one must not stay behind
    assert current_span() is None
    async with tracer.trace("outer") as outer, outer.span("outer span") as span:
        await call()
        assert current_trace() is outer
        assert current_span() is span
    assert seen == [None, None]
    await tracer.flush()
    names = sorted(t["name"] for t in recorder.received)
    assert names == ["GET /leaky", "GET /leaky", "outer"]
