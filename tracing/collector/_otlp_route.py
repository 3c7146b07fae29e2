"""``POST /v1/traces``: OTLP/HTTP traces from any OpenTelemetry SDK or collector.

Protobuf and JSON, gzip or not, within the same body limit as the batch route, answered
in the request's encoding. Decoding runs off the event loop (pure Python: a large body
takes a while), and the answer is sent only after the store committed.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ._body import BodyError, read_body
from ._otlp_ingest import read_request
from ._otlp_response import PATH, encoding_of, otlp_error, otlp_success
from ._otlp_span import DecodeError
from ._settings import SETTINGS, STORE, TRACE_COUNT
from ._storage import StoreError

__all__ = ["add_otlp_route", "receive_traces"]

logger = logging.getLogger("tracing.collector")

_UNAVAILABLE = "the trace store is unavailable; try again later"
_TYPES = "Content-Type must be application/x-protobuf or application/json"


def add_otlp_route(app: web.Application) -> None:
    app.router.add_post(PATH, receive_traces)


async def receive_traces(request: web.Request) -> web.Response:
    """Decode, map and store the request's spans; reject the unreadable ones alone."""
    encoding = encoding_of(request)
    if encoding is None:
        return otlp_error(request, 415, f"{_TYPES}, got {request.content_type!r:.60}")
    try:
        body = await read_body(request, request.app[SETTINGS].max_body)
    except BodyError as exc:
        return otlp_error(request, exc.status, exc.message)
    loop = asyncio.get_running_loop()
    try:
        ingest = await loop.run_in_executor(None, read_request, body, encoding)
    except DecodeError as exc:
        return otlp_error(request, 400, str(exc))
    request[TRACE_COUNT] = ingest.traces
    if ingest.roots or ingest.spans:
        try:
            await request.app[STORE].add_spans(ingest.spans, ingest.roots)
        except StoreError as exc:
            logger.error("cannot store %d OTLP trace(s): %s", ingest.traces, exc)
            return otlp_error(request, 503, _UNAVAILABLE, {"Retry-After": "1"})
    if ingest.rejected:
        logger.warning(
            "POST %s rejected %d span(s): %s", PATH, len(ingest.rejected), ingest.error_message
        )
    return otlp_success(encoding, len(ingest.rejected), ingest.error_message)
