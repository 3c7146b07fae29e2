"""The loopback sink: an HTTP server in its own process that accepts every driver's wire
format and counts requests, bytes and records.

Records are counted by decoding each body, not trusted from headers:

- ``/api/traces/batch`` (this SDK and the floors): JSON, ``len(body["traces"])``. The
  answer is ``{}``, which the SDK reads as "every trace accepted" (a 2xx without
  ``results``: ``tracing._wire.parse_results``).
- ``/v1/traces`` (OpenTelemetry OTLP/HTTP): protobuf ``ExportTraceServiceRequest``
  parsed with ``opentelemetry-proto``, counting spans.
- ``/batch/`` (PostHog) and ``/v1/batch`` (Segment): JSON, ``len(body["batch"])``.
- ``/api/v1/agents/{id}/trace`` (Infinium): one record per request.

``GET /_stats`` reports the counters and the sink's own CPU seconds since the last
``POST /_reset``, so a run can show the sink had headroom. The process stops by itself
after ``--lifetime`` seconds, or when its parent (``run.py``) kills it by PID.

Run: ``python -m benchmarks._sink --port 0 --ready-file PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import time
import zlib
from typing import Any

import orjson
from aiohttp import web

_TRACES_OK = b"{}"


class Counters:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = self.records = self.bytes = self.errors = 0
        self.by_path: dict[str, int] = {}
        self.cpu0 = time.process_time()
        self.first = self.last = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "records": self.records,
            "bytes": self.bytes,
            "errors": self.errors,
            "by_path": self.by_path,
            "cpu_s": time.process_time() - self.cpu0,
            "first": self.first,
            "last": self.last,
        }


def _otlp_request() -> Any:
    """The ``ExportTraceServiceRequest`` class, or None without ``opentelemetry-proto``.
    Imported when the sink starts: its ~0.1 s import would otherwise stall the first
    OTLP request of a run, to the cost of whichever driver comes first."""
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError:
        return None
    return ExportTraceServiceRequest


_REQUEST = _otlp_request()


def _count_otlp(body: bytes) -> int:
    if _REQUEST is None:
        raise RuntimeError("the sink needs opentelemetry-proto to count OTLP spans")
    request = _REQUEST()
    request.ParseFromString(body)
    return sum(
        len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans
    )


def _count(path: str, body: bytes) -> int:
    if path.endswith("/api/traces/batch"):
        return len(orjson.loads(body)["traces"])
    if path == "/v1/traces":
        return _count_otlp(body)
    if path in ("/batch/", "/batch", "/v1/batch", "/i/v0/e/", "/i/v1/analytics/events"):
        data = orjson.loads(body)
        return len(data["batch"]) if isinstance(data, dict) else len(data)
    if path.endswith("/trace"):
        return 1
    return 0


def make_app() -> web.Application:
    counters = Counters()
    state: dict[str, Any] = {"down": False}

    async def ingest(request: web.Request) -> web.Response:
        if state["down"]:
            return web.Response(status=503, text="down")
        body = await request.read()
        counters.requests += 1
        counters.bytes += request.content_length or len(body)  # as sent (gzip included)
        encoding = request.headers.get("Content-Encoding", "")
        try:
            # aiohttp's server usually inflates bodies itself; inflate only what is left.
            if encoding == "gzip" and body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            elif encoding == "deflate" and body[:1] == b"\x78":
                body = zlib.decompress(body)
            count = _count(request.path, body)
        except Exception:
            counters.errors += 1
            return web.Response(status=400, text="cannot decode the body")
        now = time.perf_counter()
        if not counters.first:
            counters.first = now
        counters.last = now
        counters.records += count
        counters.by_path[request.path] = counters.by_path.get(request.path, 0) + count
        if request.path == "/v1/traces":
            return web.Response(body=b"", content_type="application/x-protobuf")
        return web.Response(body=_TRACES_OK, content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(counters.as_dict()), content_type="application/json")

    async def reset(request: web.Request) -> web.Response:
        counters.reset()
        return web.Response(body=b"{}", content_type="application/json")

    async def down(request: web.Request) -> web.Response:
        state["down"] = request.query.get("down", "1") == "1"
        return web.Response(body=b"{}", content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_post("/_down", down)
    app.router.add_route("*", "/{tail:.*}", ingest)
    return app


def _write_port(path: str, port: int) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(path + ".tmp", path)


async def _serve(port: int, ready_file: str | None, lifetime: float) -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    server = site._server
    assert server is not None
    assert server.sockets
    bound = server.sockets[0].getsockname()[1]
    if ready_file:
        _write_port(ready_file, bound)
    print(f"sink listening on 127.0.0.1:{bound}", flush=True)
    try:
        await asyncio.sleep(lifetime)  # bounded: the sink never outlives a forgotten run
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file")
    parser.add_argument("--lifetime", type=float, default=3600.0)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.ready_file, args.lifetime))


if __name__ == "__main__":
    main()
