"""Fixtures for the collector: the real ``python -m tracing.collector`` as a subprocess,
an HTTP session, and headless Chromium (Debian's ``/usr/bin/chromium``)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
import pytest_asyncio

from tests import _proc
from tests._postgres import PostgresServer, find_bindir
from tracing import LlmUsage, Span, Trace
from tracing.collector._storage import TraceStore, open_store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",  # /dev/shm is small in containers: tabs crash without it
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_LISTENING = re.compile(r"listening on (http://\S+) \(db: (.+?);")
START_TIMEOUT = 30.0
_HAVE_CHROMIUM = Path(CHROMIUM).exists()


class Collector:
    """A running collector process; ``log`` holds its stderr lines as they come."""

    def __init__(self, proc: asyncio.subprocess.Process, db: Path | str) -> None:
        self.proc = proc
        self.db = db
        self.url = ""
        self.log: list[str] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Collector {self.url} pid={self.proc.pid} rc={self.proc.returncode}>"

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            async with self._changed:
                self.log.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_line(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """The first log line matching ``pattern``, waiting for it to be written."""
        regex = re.compile(pattern)
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for line in self.log:
                    if found := regex.search(line):
                        return found
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"collector exited; its log:\n{self.output}")
                await self._changed.wait()

    @property
    def output(self) -> str:
        return "\n".join(self.log)

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read(), name="collector-log")
        found = await self.wait_for_line(_LISTENING.pattern)
        self.url = found.group(1)

    async def stop(self) -> int:
        """SIGTERM, then wait for a clean exit (SIGKILL only if it hangs)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):
                code = await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        if self._reader is not None:
            await self._reader
        return code


StartCollector = Callable[..., Awaitable[Collector]]


def collector_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return _proc.child_env(extra)


def _command(db: Path | str, *args: str) -> list[str]:
    return ["-W", "error", "-m", "tracing.collector", "--port", "0", "--db", str(db), *args]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run (each test gets its own database)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL is missing: run `make pytest` or `apt-get install postgresql`")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


_databases = itertools.count()


async def fresh_database(server: PostgresServer) -> str:
    """The URL of a new, empty database on ``server``."""
    import asyncpg

    name = f"test_{os.getpid()}_{next(_databases)}"
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
    finally:
        await conn.close()
    return server.url(name)


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store the collector under test uses; every collector test runs on both."""
    return str(request.param)


@pytest.fixture
async def db_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """``--db`` for this test: a SQLite file, or a fresh PostgreSQL database."""
    if store_kind == "sqlite":
        return str(tmp_path / "collector.db")
    return await fresh_database(request.getfixturevalue("pg_server"))


@contextlib.asynccontextmanager
async def collectors(default_db: str) -> AsyncIterator[StartCollector]:
    """Start ``python -m tracing.collector --port 0`` with extra arguments; every process
    started is stopped at the end."""
    started: list[Collector] = []

    async def start(
        *args: str, db: Path | str | None = None, env: dict[str, str] | None = None
    ) -> Collector:
        db = db or default_db
        proc = await _proc.spawn(*_command(db, *args), env=env, stdout=asyncio.subprocess.DEVNULL)
        collector = Collector(proc, db)
        started.append(collector)
        await collector.start()
        return collector

    try:
        yield start
    finally:
        for collector in started:
            await collector.stop()


@pytest.fixture
async def start_collector(db_url: str) -> AsyncIterator[StartCollector]:
    """Start collectors on this test's database (SQLite, then PostgreSQL)."""
    async with collectors(db_url) as start:
        yield start


@pytest.fixture
async def pg_url(pg_server: PostgresServer) -> str:
    """A fresh PostgreSQL database, for tests about PostgreSQL alone."""
    return await fresh_database(pg_server)


@pytest.fixture
async def start_pg_collector(pg_url: str) -> AsyncIterator[StartCollector]:
    """Start collectors on one fresh PostgreSQL database (replicas)."""
    async with collectors(pg_url) as start:
        yield start


@pytest.fixture
async def collector(start_collector: StartCollector) -> Collector:
    return await start_collector()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class SharedCollector:
    """A collector process on plain threads, usable from any event loop; see the module
    docstring. ``log`` holds its stderr lines as they come."""

    def __init__(self, db: Path, *args: str) -> None:
        self.db = db
        self.log: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self.proc = subprocess.Popen(
            [sys.executable, *_command(db, *args)],
            cwd=_proc.ROOT,
            env=_proc.child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, name="shared-collector-log")
        self._reader.start()
        self.url = self.wait_for_line(_LISTENING.pattern).group(1)

    def __repr__(self) -> str:
        return f"<SharedCollector {self.url} pid={self.proc.pid}>"

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._changed:
                self.log.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.log:
                    if found := regex.search(line):
                        return found
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    raise AssertionError(f"no line matching {pattern!r}; log:\n{self.output}")
                self._changed.wait(remaining)

    @property
    def output(self) -> str:
        return "\n".join(self.log)

    def stop(self) -> int:
        self.proc.terminate()
        try:
            code = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join()
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code


@pytest.fixture(scope="module")
def shared_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedCollector]:
    """One collector for a module's tests that store nothing another test counts."""
    served = SharedCollector(tmp_path_factory.mktemp("shared") / "collector.db")
    try:
        yield served
    finally:
        assert served.stop() == 0, served.output


class Served(Protocol):
    url: str


T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_trace(
    name: str = "agent.run",
    *,
    start: float = 0.0,
    spans: Iterable[tuple[str, float, float, str | None]] = (),
    **fields: Any,
) -> Trace:
    """A finished trace at fixed times; ``spans`` are ``(name, start, end, parent name)``."""
    spans = list(spans)
    end = max([start + 1.0, *(s[2] for s in spans)])
    trace = Trace(name, start_time=at(start), end_time=at(end), **fields)
    by_name: dict[str, Span] = {}
    for span_name, begin, finish, parent in spans:
        span = Span(
            span_name,
            parent_id=by_name[parent].id if parent else None,
            start_time=at(begin),
            end_time=at(finish),
            llm_usage=LlmUsage("gpt-4o", "openai", 10, 5) if span_name.startswith("llm") else None,
        )
        by_name[span_name] = span
        trace.spans.append(span)
    return trace


async def get_json(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def post_batch(
    http: aiohttp.ClientSession,
    collector: Served,
    body: bytes | Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **(headers or {})}
    async with http.post(f"{collector.url}/api/traces/batch", data=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


@contextlib.asynccontextmanager
async def _launch() -> AsyncIterator[Any]:
    if not _HAVE_CHROMIUM:
        pytest.fail(f"{CHROMIUM} is missing: run `make pytest` or `apt-get install chromium`")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium of this test's own (the system one; ``make pytest`` installs it).
    Prefer ``page``: one browser per module, a fresh context per test."""
    async with _launch() as browser:
        yield browser


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the module; its tests run in the module's event loop
    (``pytestmark = pytest.mark.asyncio(loop_scope="module")``)."""
    async with _launch() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any) -> AsyncIterator[Any]:
    """A page in a browser context of its own (cookies, storage), closed after the test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        new = await context.new_page()
        new.set_default_timeout(15_000)
        yield new
    finally:
        await context.close()


@pytest.fixture
async def any_store(db_url: str) -> AsyncIterator[TraceStore]:
    """An open, empty store of each kind."""
    store = open_store(db_url)
    await store.open()
    yield store
    await store.close()
