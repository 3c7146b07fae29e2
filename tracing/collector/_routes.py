"""Request handlers: batch ingest, the read API, health, and the viewer pages.

Handlers answer every expected failure themselves with a JSON ``{"message": ...}`` (API)
or an HTML page (viewer); ``_app``'s middleware catches the unexpected, so no stack
trace reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from ._auth import COOKIE, SESSION_SECONDS
from ._body import BodyError, read_body
from ._page import (
    PAGE_HEADERS,
    render_error,
    render_list,
    render_signin,
    render_trace,
)
from ._query import QueryError, list_query
from ._settings import SESSION, SETTINGS, STORE, TRACE_COUNT
from ._storage import StoreError
from ._validate import EnvelopeError, ValidTrace, parse_envelope, validate_trace

__all__ = ["add_routes", "json_error", "page_error"]

logger = logging.getLogger("tracing.collector")

DEFAULT_LIMIT = 50
PAGE_SIZE = 50
_UNAVAILABLE = "the trace store is unavailable; try again later"
RETRY_AFTER = {"Retry-After": "1"}


def json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    response = json_response(orjson.dumps({"message": message}), status)
    response.headers.update(headers or {})
    return response


def page(markup: str, status: int = 200) -> web.Response:
    return web.Response(
        text=markup, status=status, content_type="text/html", headers=dict(PAGE_HEADERS)
    )


def page_error(request: web.Request, status: int, message: str) -> web.Response:
    return page(render_error(status, message, signed_in=request.get(SESSION, False)), status)


def unavailable(request: web.Request, doing: str, exc: StoreError) -> web.Response:
    """503 with Retry-After: the database is away (the SDK retries; so may a person)."""
    logger.error("cannot %s: %s", doing, exc)
    if request.path.startswith("/api/") or request.path == "/healthz":
        return json_error(503, _UNAVAILABLE, RETRY_AFTER)
    response = page_error(request, 503, _UNAVAILABLE)
    response.headers.update(RETRY_AFTER)
    return response


def add_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.post("/api/traces/batch", ingest),
            web.get("/api/traces", list_traces),
            web.get("/api/traces/{id:[\\s\\S]+}", get_trace),
            web.get("/healthz", healthz),
            web.get("/", list_page),
            web.get("/traces/{id:[\\s\\S]+}", trace_page),
            web.get("/signin", signin_form),
            web.post("/signin", signin),
            web.post("/signout", signout),
        ]
    )


# The API ---------------------------------------------------------------------------------


async def ingest(request: web.Request) -> web.Response:
    """``POST /api/traces/batch``: validate each trace, store the valid ones at once."""
    settings = request.app[SETTINGS]
    try:
        body = await read_body(request, settings.max_body)
    except BodyError as exc:
        return json_error(exc.status, exc.message)
    try:
        raw = parse_envelope(body)
    except EnvelopeError as exc:
        return json_error(400, str(exc))
    request[TRACE_COUNT] = len(raw)
    checked = [validate_trace(item) for item in raw]
    valid = [c for c in checked if isinstance(c, ValidTrace)]
    try:
        added = iter(await request.app[STORE].add(valid))
    except StoreError as exc:
        return unavailable(request, f"store a batch of {len(valid)} trace(s)", exc)
    results: list[dict[str, Any]] = []
    for item in checked:
        if isinstance(item, ValidTrace):
            message = "ok" if next(added) else "ok: already stored"
            results.append({"id": item.id, "success": True, "message": message})
        else:
            results.append({"id": item.id, "success": False, "message": item.message})
    return json_response(orjson.dumps({"results": results}))


async def list_traces(request: web.Request) -> web.Response:
    """``GET /api/traces``: summaries newest first, with the total that matched."""
    try:
        query = list_query(request.query, DEFAULT_LIMIT)
    except QueryError as exc:
        return json_error(400, str(exc))
    try:
        found = await request.app[STORE].recent(query)
    except StoreError as exc:
        return unavailable(request, "list traces", exc)
    request[TRACE_COUNT] = len(found.items)
    head = orjson.dumps(
        {
            "total": found.total,
            "limit": query.limit,
            "offset": query.offset,
            "nextCursor": found.next_cursor,
        }
    )
    return json_response(head[:-1] + b',"traces":[' + b",".join(found.items) + b"]}")


async def get_trace(request: web.Request) -> web.Response:
    """``GET /api/traces/{id}``: the stored wire form, spans included."""
    trace_id = request.match_info["id"]
    try:
        document = await request.app[STORE].get(trace_id)
    except StoreError as exc:
        return unavailable(request, "read a trace", exc)
    if document is None:
        return json_error(404, "no trace has that id")
    request[TRACE_COUNT] = 1
    return json_response(document)


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 while the store answers, 503 otherwise."""
    try:
        await request.app[STORE].ping()
    except StoreError as exc:
        return unavailable(request, "answer the health check", exc)
    return json_response(b'{"status":"ok"}')


# The viewer ------------------------------------------------------------------------------


async def list_page(request: web.Request) -> web.Response:
    try:
        query = list_query(request.query, PAGE_SIZE)
    except QueryError as exc:
        return page_error(request, 400, str(exc))
    store = request.app[STORE]
    try:
        found = await store.recent(query)
        names = await store.names()
    except StoreError as exc:
        return unavailable(request, "list traces", exc)
    request[TRACE_COUNT] = len(found.items)
    markup = render_list(
        [orjson.loads(item) for item in found.items],
        query=query,
        total=found.total,
        next_cursor=found.next_cursor,
        prev_cursor=found.prev_cursor,
        names=names,
        signed_in=request.get(SESSION, False),
        page_size=PAGE_SIZE,
    )
    return page(markup)


async def trace_page(request: web.Request) -> web.Response:
    try:
        document = await request.app[STORE].get(request.match_info["id"])
    except StoreError as exc:
        return unavailable(request, "read a trace", exc)
    if document is None:
        return page_error(request, 404, "No trace has that id.")
    request[TRACE_COUNT] = 1
    return page(render_trace(orjson.loads(document), signed_in=request.get(SESSION, False)))


def _safe_next(value: Any) -> str:
    """Only a path on this server: never ``//host`` or a scheme (no open redirect)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


async def signin_form(request: web.Request) -> web.StreamResponse:
    if not request.app[SETTINGS].keys:
        raise web.HTTPSeeOther("/")
    return page(render_signin(next_path=_safe_next(request.query.get("next")), failed=False))


async def signin(request: web.Request) -> web.StreamResponse:
    keys = request.app[SETTINGS].keys
    if not keys:
        raise web.HTTPSeeOther("/")
    try:
        form = await request.post()
    except web.HTTPException:
        raise  # too large: aiohttp's 413
    except Exception:  # a malformed form (multipart, charset): any error
        return page_error(request, 400, "The sign-in form could not be read.")
    key, next_path = form.get("key"), _safe_next(form.get("next"))
    if not isinstance(key, str) or not keys.check(key):
        return page(render_signin(next_path=next_path, failed=True), 401)
    response = web.HTTPSeeOther(next_path)
    response.set_cookie(
        COOKIE,
        keys.session_for(key),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    raise response


async def signout(request: web.Request) -> web.StreamResponse:
    """End the session on the server (for every replica sharing the database), not
    only in this browser: a copy of the cookie opens nothing afterwards."""
    session = request.app[SETTINGS].keys.check_session(request.cookies.get(COOKIE))
    if session is not None:
        try:
            await request.app[STORE].revoke_session(session.id, session.expires)
        except StoreError as exc:
            return unavailable(request, "end a session", exc)
    response = web.HTTPSeeOther("/signin")
    response.del_cookie(COOKIE, path="/")
    raise response


def signin_redirect(request: web.Request) -> web.HTTPSeeOther:
    return web.HTTPSeeOther("/signin?next=" + quote(request.rel_url.path_qs, safe=""))
