"""The aiohttp application: middleware (logging, errors, keys), the store's lifetime,
and ``serve()``, which runs it until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ._auth import COOKIE, Keys
from ._otlp_response import PATH as OTLP_PATH
from ._otlp_response import otlp_error
from ._otlp_route import add_otlp_route
from ._query import QueryError, check_query
from ._routes import add_routes, json_error, page_error, signin_redirect, unavailable
from ._settings import SESSION, SETTINGS, STORE, TRACE_COUNT, Settings
from ._storage import StoreError, open_store

__all__ = ["DEFAULT_MAX_BODY", "host_name", "is_loopback", "make_app", "serve"]

logger = logging.getLogger("tracing.collector")

DEFAULT_MAX_BODY = 10 * 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN_PATHS = frozenset({"/healthz", "/signin", "/signout"})


def make_app(
    db: str | Path,
    *,
    keys: Iterable[str] = (),
    max_body: int = DEFAULT_MAX_BODY,
    loopback_hosts_only: bool = False,
) -> web.Application:
    """The collector as an aiohttp application storing into ``db``.

    Args:
        db: a PostgreSQL URL (``postgresql://...``), or the path of a SQLite database
            (created if missing).
        keys: accepted keys; none means no authentication.
        max_body: the largest request body in bytes, before and after decompression.
        loopback_hosts_only: answer only requests whose Host is a loopback name.

    Run it with ``auto_decompress=False`` on the runner (``serve()`` does), so that gzip
    bodies reach the size-bounded inflater instead of being inflated by the HTTP parser.
    """
    if max_body < 1:
        raise ValueError(f"max_body must be >= 1, got {max_body!r}")
    app = web.Application(
        middlewares=[_log_requests, _same_site_only, _require_key, _known_query],
        client_max_size=max(max_body, 64 * 1024),
    )
    app[SETTINGS] = Settings(
        db=str(db), keys=Keys(keys), max_body=max_body, loopback_hosts_only=loopback_hosts_only
    )
    app.cleanup_ctx.append(_store_ctx)
    add_routes(app)
    add_otlp_route(app)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = open_store(app[SETTINGS].db)
    await store.open()
    app[STORE] = store
    yield
    await store.close()


def _is_api(request: web.Request) -> bool:
    return request.path.startswith(("/api/", "/v1/")) or request.path == "/healthz"


def _api_error(
    request: web.Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An API failure: OTLP's ``Status`` in the request's encoding on ``/v1/traces``."""
    if request.path == OTLP_PATH:
        return otlp_error(request, status, message, headers)
    return json_error(status, message, headers)


@web.middleware
async def _log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One INFO line per request; errors become JSON or a page, never a traceback."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        if status < 400:
            raise
        message = exc.reason if status != 404 else "not found"
        if _is_api(request):
            return _api_error(request, status, message, _allow(exc))
        response = page_error(request, status, message)
        response.headers.update(_allow(exc))
        return response
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer
        raise
    except Exception:
        logger.exception("unexpected error on %s %s", request.method, request.path)
        if _is_api(request):
            return json_error(500, "internal error")
        return page_error(request, 500, "internal error")
    finally:
        logger.info(
            "%s %s %d traces=%d %.1fms",
            request.method,
            request.path,
            status,
            request.get(TRACE_COUNT, 0),
            (time.perf_counter() - started) * 1000,
        )


def _allow(exc: web.HTTPException) -> dict[str, str]:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}


def _refuse(request: web.Request, status: int, message: str) -> web.Response:
    if _is_api(request):
        return _api_error(request, status, message)
    return page_error(request, status, message)


@web.middleware
async def _same_site_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what a browser sends on behalf of another site.

    A page elsewhere may make a person's browser post to this collector (a form or a
    ``text/plain`` fetch needs no preflight): such requests carry ``Sec-Fetch-Site`` or
    ``Origin``, which the SDK and command-line clients never send. And with no keys on
    loopback, a Host other than a loopback name means DNS rebinding.
    """
    if request.app[SETTINGS].loopback_hosts_only and not is_loopback(host_name(request.host)):
        return _refuse(request, 403, "this collector answers only loopback Host names")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        site = request.headers.get("Sec-Fetch-Site")
        origin = request.headers.get("Origin")
        if site is not None:
            cross = site not in ("same-origin", "none")
        else:
            cross = origin is not None and origin != f"{request.scheme}://{request.host}"
        if cross:
            return _refuse(request, 403, "cross-site requests are refused")
    return await handler(request)


@web.middleware
async def _require_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With keys set: the API takes a Bearer key; pages take it or a session cookie.

    Ingest takes only the header, so a page on another site cannot post traces with a
    person's cookie.
    """
    keys = request.app[SETTINGS].keys
    if not keys or request.path in _OPEN_PATHS:
        return await handler(request)
    if keys.check_header(request.headers.get("Authorization")):
        return await handler(request)
    api = _is_api(request)
    ingest = api and request.method == "POST"
    session = None if ingest else keys.check_session(request.cookies.get(COOKIE))
    if session is not None:
        try:
            revoked = await request.app[STORE].session_revoked(session.id)
        except StoreError as exc:
            return unavailable(request, "check a session", exc)
        if not revoked:
            request[SESSION] = True
            return await handler(request)
    if api:
        message = "a valid key is required: Authorization: Bearer <key>"
        return _api_error(request, 401, message, {"WWW-Authenticate": 'Bearer realm="tracing"'})
    if request.method in ("GET", "HEAD"):
        raise signin_redirect(request)
    return page_error(request, 401, "Sign in first.")


@web.middleware
async def _known_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    """400 naming a query parameter the route does not take (or one given twice)."""
    resource = request.match_info.route.resource
    if request.match_info.http_exception is None and resource is not None:
        try:
            check_query(resource.canonical, request.query)
        except QueryError as exc:
            return _refuse(request, 400, str(exc))
    return await handler(request)


def host_name(host: str) -> str:
    """The name part of a Host header (``[::1]:80`` -> ``::1``), read as text: building a
    URL from an untrusted Host (bad port, bad IDNA label) raises inside yarl."""
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else ""
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _BadRequestLine(logging.Filter):
    """aiohttp logs a malformed request (bad header byte, bad framing) at ERROR with its
    traceback, though it is the client's fault and already answered 400: one WARNING
    line instead, so a log holds tracebacks only for the collector's own errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            reason = " ".join(str(exc.message).split())[:200]
            record.msg, record.args = "refused a malformed request from %s: %s", (remote, reason)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _quiet_bad_requests() -> None:
    server_logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _BadRequestLine) for f in server_logger.filters):
        server_logger.addFilter(_BadRequestLine())


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(
    host: str, port: int, db: str | Path, *, keys: Iterable[str] = (), max_body: int
) -> None:
    """Run the collector until SIGTERM or SIGINT, then finish requests and close the db.

    The first INFO line says where it listens (the real port, also for port 0) and which
    database file it uses.
    """
    keys = [k for k in keys if k]
    _quiet_bad_requests()
    app = make_app(
        db, keys=keys, max_body=max_body, loopback_hosts_only=not keys and is_loopback(host)
    )
    # auto_decompress=False: _body counts the bytes as received and inflates them itself,
    # bounded, rather than letting the HTTP parser inflate a gzip bomb.
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, auto_decompress=False, shutdown_timeout=5.0
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        logger.info(
            "tracing collector listening on %s (db: %s; keys: %d; max body: %d bytes)",
            _url(str(bound[0]), int(bound[1])),
            app[STORE].description,
            len(app[SETTINGS].keys),
            max_body,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        logger.info("tracing collector stopping")
    finally:
        await runner.cleanup()
    logger.info("tracing collector stopped")
