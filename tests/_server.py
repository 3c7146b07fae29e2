"""A fault-injecting collector stand-in for tests: records every request, answers as told.

``FaultServer`` listens on 127.0.0.1 on a free port. By default it accepts every trace
(200 with one ``success: true`` result per trace). A test scripts faults with
``respond_with()`` (the next answers, in order), ``max_body`` (413 above a size),
``reject`` (per-trace ``success: false``) and waits with ``wait_for_traces(n)`` instead
of sleeping. The raw body is kept as received (``auto_decompress=False``), so gzip bodies
are checked byte for byte.

OTLP requests (``application/x-protobuf``) are parsed with the official classes
(``tests._otlp``); their traces are the root spans' ``tracing.trace.id``. They are answered
as OTLP says: an ``ExportTraceServiceResponse`` (``Reply.body`` scripts a partial success)
or, for a failure, a ``google.rpc.Status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from tests._helpers import PATIENCE
from tracing import Stats

__all__ = ["FaultServer", "Recorded", "Reply", "check_invariant", "running_server"]


@dataclass
class Reply:
    """How to answer one request.

    ``delay`` holds the answer back that many seconds (a slow server); ``hang`` never
    answers: the request is held until the client gives up (its ``timeout``) and
    disconnects; ``drop`` closes the connection without any answer; ``results`` False
    answers 200 with an empty body (every trace accepted).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    results: bool = True
    body: bytes | None = None
    content_type: str | None = None  # of ``body``; None: the request's protocol's
    hang: bool = False


@dataclass
class Recorded:
    """One request as the server saw it, and what it answered."""

    headers: CIMultiDict[str]
    raw: bytes
    body: Any
    time: float
    path: str
    status: int | None = None  # None: no answer reached the client
    accepted: list[str] = field(default_factory=list)

    @property
    def is_otlp(self) -> bool:
        return self.headers.get("Content-Type") == "application/x-protobuf"

    @functools.cached_property
    def otlp(self) -> Any:
        """The ``ExportTraceServiceRequest`` of an OTLP request."""
        from tests._otlp import decode_request

        return decode_request(self.raw, self.headers.get("Content-Encoding"))

    @property
    def trace_ids(self) -> list[str]:
        if self.is_otlp:
            from tests._otlp import root_ids

            return root_ids(self.otlp)
        if not isinstance(self.body, dict):
            return []
        return [t["id"] for t in self.body.get("traces", [])]

    @property
    def traces(self) -> list[dict[str, Any]]:
        return list(self.body["traces"]) if isinstance(self.body, dict) else []


class FaultServer:
    """The scripted server; see the module docstring."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.default = Reply()
        self.max_body: int | None = None
        self.reject: dict[str, str] = {}
        self.gate: asyncio.Event | None = None
        self.reply_for: Callable[[Recorded], Reply | None] | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self._script: deque[Reply] = deque()
        self._changed = asyncio.Event()
        self._handlers: set[asyncio.Task[Any]] = set()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app)

    async def start(self) -> FaultServer:
        await self._server.start_server(auto_decompress=False, shutdown_timeout=0.5)
        return self

    async def close(self) -> None:
        for task in list(self._handlers):
            task.cancel()
        await self._server.close()

    async def __aenter__(self) -> FaultServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return str(self._server.make_url("")).rstrip("/")

    # Scripting ---------------------------------------------------------------------------

    def respond_with(
        self,
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        times: int = 1,
        delay: float = 0.0,
        drop: bool = False,
        results: bool = True,
        hang: bool = False,
    ) -> None:
        """Queue ``times`` answers; once the script runs out, ``default`` answers."""
        reply = Reply(status, dict(headers or {}), delay, drop, results, hang=hang)
        self._script.extend([reply] * times)

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    # Waiting -----------------------------------------------------------------------------

    def accepted_ids(self) -> list[str]:
        """Ids of traces accepted with an answer the client received, duplicates kept."""
        return [i for r in self.requests for i in r.accepted]

    def batch_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/api/traces/batch")]

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout * PATIENCE):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_traces(self, count: int, timeout: float = 20.0) -> None:
        """Return once ``count`` traces were accepted (raises TimeoutError otherwise)."""
        await self.wait_until(lambda: len(self.accepted_ids()) >= count, timeout)

    async def wait_for_requests(self, count: int, timeout: float = 20.0) -> None:
        await self.wait_until(lambda: len(self.requests) >= count, timeout)

    # Handling ----------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()

    def _next_reply(self, record: Recorded) -> Reply:
        if self.reply_for is not None and (reply := self.reply_for(record)) is not None:
            return reply
        if self.max_body is not None and len(record.raw) > self.max_body:
            return Reply(413)
        if self._script:
            return self._script.popleft()
        return self.default

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1
            self._handlers.discard(task)
            self._notify()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        text = gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        record = Recorded(CIMultiDict(request.headers), raw, body, time.monotonic(), request.path)
        self.requests.append(record)
        self._notify()
        reply = self._next_reply(record)
        if self.gate is not None:
            await self.gate.wait()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.hang:
            # Cancelled when the client disconnects (TestServer cancels handlers then).
            await asyncio.Event().wait()
        if reply.drop:
            transport = request.transport
            assert transport is not None
            transport.abort()
            # The handler must not answer on the dead connection; wait to be cancelled.
            await asyncio.Event().wait()
        record.status = reply.status
        content_type = "application/json"
        if record.is_otlp:
            content_type = "application/x-protobuf"
            if reply.body is not None:
                payload: bytes = reply.body
            elif 200 <= reply.status < 300:
                payload = b""  # an empty ExportTraceServiceResponse: full success
            else:  # google.rpc.Status{code: 3, message: "scripted"}, written by hand
                payload = b"\x08\x03\x12\x08scripted"
        elif reply.body is not None:
            payload = reply.body
        elif 200 <= reply.status < 300 and reply.results:
            results = []
            for trace_id in record.trace_ids:
                message = self.reject.get(trace_id)
                results.append(
                    {"id": trace_id, "success": message is None, "message": message or "ok"}
                )
            payload = json.dumps({"results": results}).encode()
        else:
            payload = b"" if 200 <= reply.status < 300 else b'{"error": "scripted"}'
        if 200 <= reply.status < 300:
            transport = request.transport
            if transport is None or transport.is_closing():
                record.status = None  # the client gave up before the answer
            else:
                listed = reply.body is None and reply.results and not record.is_otlp
                record.accepted = [
                    i for i in record.trace_ids if not listed or i not in self.reject
                ]
        return web.Response(
            status=reply.status,
            body=payload,
            headers=reply.headers,
            content_type=reply.content_type or content_type,
        )


@contextlib.asynccontextmanager
async def running_server() -> Any:
    """``async with running_server() as server:`` for code outside pytest fixtures."""
    server = FaultServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def check_invariant(stats: Stats) -> None:
    """``enqueued == sent + failed + dropped + queue_size + in_flight``."""
    assert stats.enqueued == (
        stats.sent + stats.failed + stats.dropped + stats.queue_size + stats.in_flight
    ), stats
