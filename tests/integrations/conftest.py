"""Fixtures for the integration tests: a recording trace receiver and subprocess helpers.

The receiver is a real aiohttp server on 127.0.0.1 that accepts every trace, keeps what
arrived (duplicates included, so "exactly once" can be checked), and lets a test await a
count instead of sleeping.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests import _proc
from tracing import AsyncTracing

ROOT = _proc.ROOT


class Recorder:
    """Accepts every batch on ``POST /api/traces/batch`` and records its traces."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/traces/batch", self._batch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _batch(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        traces = json.loads(body)["traces"]
        self.received.extend(traces)
        self._changed.set()
        results = [{"id": t["id"], "success": True, "message": "ok"} for t in traces]
        return web.json_response({"results": results})

    @property
    def by_id(self) -> dict[str, dict[str, Any]]:
        return {t["id"]: t for t in self.received}

    async def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Return once at least ``count`` traces have arrived."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    await rec.start()
    try:
        yield rec
    finally:
        await rec.close()


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process (see ``tests/_proc.py``), plus ``extra``."""
    return _proc.child_env(extra)


async def spawn(*args: str, **env: str) -> asyncio.subprocess.Process:
    """Start ``python *args`` from the repo root with piped stdout and stderr."""
    return await _proc.spawn(*args, env=env)


async def read_until(stream: asyncio.StreamReader, marker: str, seen: list[str]) -> str:
    """Read lines into ``seen`` until one contains ``marker``; return that line."""
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(f"stream ended before {marker!r}; got:\n" + "".join(seen))
        line = raw.decode()
        seen.append(line)
        if marker in line:
            return line


@pytest.fixture
async def tracer(recorder: Recorder) -> AsyncIterator[AsyncTracing]:
    """A tracer sending to ``recorder`` only when flushed; shut down after the test."""
    made = AsyncTracing(endpoint=recorder.url, flush_at=10_000, flush_interval=0)
    try:
        yield made
    finally:
        await made.shutdown(timeout=10)


async def delivered(tracer: AsyncTracing, recorder: Recorder) -> list[dict[str, Any]]:
    """Flush ``tracer`` and return every trace the recorder holds, in arrival order."""
    await tracer.flush()
    return recorder.received
