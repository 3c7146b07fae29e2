"""FastAPI and Starlette: a lifespan that runs the SDK with the app, and a pure ASGI
middleware that traces every HTTP request.

Usage::

    tracer = AsyncTracing()
    app = FastAPI(lifespan=lifespan(tracer))
    app.add_middleware(TracingMiddleware, tracer=tracer)

Needs the ``fastapi`` extra (Starlette is what it really uses). ``import tracing`` never
imports this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, overload

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._client import AsyncTracing
from .._context import _span_var, _trace_var, restore
from .._models import Trace, _error_text

__all__ = ["TracingMiddleware", "lifespan"]

_AppT = TypeVar("_AppT")
_StateT = TypeVar("_StateT")


class TracingMiddleware:
    """Trace each HTTP request as ``"{method} {route template}"``, e.g. ``GET /items/{id}``.

    A pure ASGI middleware (no ``BaseHTTPMiddleware``: streaming and background tasks
    stay as they are, and the handler runs in the request's own context, so the trace is
    current inside handlers and dependencies). Metadata uses OpenTelemetry's names:
    ``http.request.method``, ``http.route`` (when a route matched) and
    ``http.response.status_code``. Status is "error" for a 5xx response or an unhandled
    exception (recorded as 500 unless a response had already started). Requests that
    matched no route are named by their raw path.

    Args:
        app: the ASGI app to wrap (``app.add_middleware`` passes it).
        tracer: the ``AsyncTracing`` that queues the traces.
    """

    def __init__(self, app: ASGIApp, *, tracer: AsyncTracing) -> None:
        if not isinstance(tracer, AsyncTracing):
            raise ValueError(f"tracer must be an AsyncTracing, got {tracer!r}")
        self.app = app
        self.tracer = tracer

    def __repr__(self) -> str:
        return f"<TracingMiddleware tracer={self.tracer!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = self.tracer
        if scope["type"] != "http" or not tracer._enabled:
            await self.app(scope, receive, send)
            return
        method: str = scope.get("method", "GET")
        path: str = scope.get("path", "") or "/"
        root_path: str = scope.get("root_path", "")
        app = scope.get("app", self.app)  # before routing: a mounted app replaces it
        trace = tracer.trace(f"{method} {path}")
        trace.metadata["http.request.method"] = method
        status: int | None = None

        # Not an ``async def``: it hands back the server's own awaitable, so a message
        # costs one call, not a coroutine more to make and await (callgrind: ~1,500
        # instructions less per request than the async wrapper, benchmarks/README.md).
        def send_and_watch(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            return send(message)

        trace_token = _trace_var.set(trace)
        # A server runs each request in a fresh context: the current span is already None
        # there, and setting it again (then resetting it) would be work for nothing.
        span_token = None if _span_var.get() is None else _span_var.set(None)
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if span_token is not None:
                restore(_span_var, span_token)
            elif _span_var.get() is not None:  # a span the app left open: not past us
                _span_var.set(None)
            restore(_trace_var, trace_token)
            if not trace._ended:  # else the handler ended the request's trace itself
                route = _route_template(scope, app, path, root_path)
                self._finish(trace, method, route or path, route, status, error)

    def _finish(
        self,
        trace: Trace,
        method: str,
        name: str,
        route: str | None,
        status: int | None,
        error: BaseException | None,
    ) -> None:
        if status is None and isinstance(error, Exception):
            status = 500  # what ServerErrorMiddleware, outside us, is about to send
        trace.name = f"{method} {name}"
        metadata = trace.metadata
        if route is not None:
            metadata["http.route"] = route
        if status is not None:
            metadata["http.response.status_code"] = status
        if error is not None:
            trace.error = _error_text(error)
            trace.status = "error"
        elif status is not None and status >= 500:
            trace.status = "error"
        self.tracer.enqueue(trace)


def _route_template(scope: Scope, app: Any, path: str, root_path: str) -> str | None:
    """The matched route's template with mount prefixes, or None if none matched.

    Starlette's routers write into the request's scope as they route: ``route`` (the
    innermost endpoint route) and ``root_path`` (grown by each ``Mount``); ``path`` and
    ``root_path`` are what the middleware saw before routing. FastAPI >= 0.137 leaves
    ``include_router()`` prefixes out of ``scope["route"].path_format`` and keeps the
    full template in ``scope["fastapi"]["effective_route_context"]``.
    """
    mounted = scope.get("root_path", "")[len(root_path) :]
    if mounted:
        prefix, last_mount = _mount_template(scope, app, path, root_path, mounted)
    else:
        prefix, last_mount = "", None
    route = scope.get("route")
    if route is not None and not isinstance(route, Mount):
        template = _path_format(scope, route)
        return None if template is None else prefix + template
    if last_mount is not None and not getattr(last_mount, "routes", None):
        return prefix + "/{path}"  # a mounted plain ASGI app (static files, say)
    return None


def _mount_template(
    scope: Scope, app: Any, path: str, root_path: str, mounted: str
) -> tuple[str, Mount | None]:
    """Replay the request through the app's mounts to name them by their templates.

    ``app``'s routes are read only for a request that went through a ``Mount``. Falls
    back to the concrete prefix if the replay does not land where routing did.
    """
    probe: dict[str, Any] = {
        "type": "http",
        "path": path,
        "root_path": root_path,
        "method": scope.get("method", "GET"),
    }
    routes: Iterable[BaseRoute] = getattr(app, "routes", None) or ()
    template, last = "", None
    while True:
        mount = _first_mount(routes, probe)
        if mount is None:
            break
        _, child = mount.matches(probe)
        probe.update(child)
        template += mount.path_format.removesuffix("/{path}")
        last, routes = mount, mount.routes
    if probe["root_path"] != scope.get("root_path", ""):
        return mounted, None
    return template, last


def _first_mount(routes: Iterable[BaseRoute], probe: dict[str, Any]) -> Mount | None:
    for route in routes:
        if isinstance(route, Mount) and route.matches(probe)[0] is Match.FULL:
            return route
    return None


def _path_format(scope: Scope, route: Any) -> str | None:
    context = scope.get("fastapi", {}).get("effective_route_context")
    if context is not None and getattr(context, "original_route", None) is route:
        path = getattr(context, "path_format", None)
        if isinstance(path, str) and path:
            return path
    path = getattr(route, "path_format", None)
    return path if isinstance(path, str) else None


@overload
def lifespan(
    tracer: AsyncTracing, inner: None = None
) -> Callable[[Any], AbstractAsyncContextManager[None]]: ...


@overload
def lifespan(
    tracer: AsyncTracing, inner: Callable[[_AppT], AbstractAsyncContextManager[_StateT]]
) -> Callable[[_AppT], AbstractAsyncContextManager[_StateT]]: ...


def lifespan(
    tracer: AsyncTracing,
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    """A lifespan that starts ``tracer`` with the app and shuts it down when it stops.

    ``FastAPI(lifespan=lifespan(tracer))``. With ``inner`` (an existing lifespan, an
    ``app -> async context manager``), the SDK starts before it and shuts down after
    it, so traces made during its shutdown are delivered too; what ``inner`` yields
    (lifespan state) is passed through.

    Args:
        tracer: the ``AsyncTracing`` to run.
        inner: the app's own lifespan, if it has one.
    """

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[Any]:
        await tracer.start()
        try:
            if inner is None:
                yield None
            else:
                async with inner(app) as state:
                    yield state
        finally:
            await tracer.shutdown()

    return run
