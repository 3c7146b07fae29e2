"""The README's collector section from outside, continued: keys on every route, the
sign-in cookie, byte-for-byte matching, and where the SQLite file is."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import pytest_asyncio

from tests import _proc
from tests.collector._contract import KEYS, database, get, post, wire
from tests.collector.conftest import Collector, collectors
from tests.collector.test_hardening import raw_request

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgres"])
async def keyed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Collector]:
    """A collector with two ``--key`` flags."""
    db = await database(request, tmp_path_factory.mktemp("keyed"))
    async with collectors(db) as start:
        yield await start("--key", KEYS[0], "--key", KEYS[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_keys_guard_the_api_ingest_and_pages(
    keyed: Collector, client: aiohttp.ClientSession
) -> None:
    """Without a key: 401 on every /api/ route and /v1/traces, the pages send a person to
    sign in; each ``--key`` opens them; ``/healthz`` stays open."""
    body = orjson.dumps({"traces": [wire("keyed")]})
    routes = [
        ("POST", "/api/traces/batch"),
        ("GET", "/api/traces"),
        ("GET", "/api/traces/keyed"),
        ("GET", "/api/unknown"),
        ("POST", "/v1/traces"),
        ("GET", "/"),
        ("GET", "/traces/keyed"),
    ]
    for key in KEYS:
        assert (await post(client, keyed, body, {"Authorization": f"Bearer {key}"}))[0] == 200
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": KEYS[0]}):
            async with client.request(
                method, keyed.url + path, data=body, headers=headers, allow_redirects=False
            ) as response:
                if method == "GET" and not path.startswith("/api/"):
                    assert response.status == 303, path
                    assert response.headers["Location"].startswith("/signin")
                else:
                    assert response.status == 401, (method, path)
        if path in ("/api/unknown", "/v1/traces"):
            continue
        for key in KEYS:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            async with client.request(method, keyed.url + path, data=body, headers=headers) as r:
                assert r.status == 200, (method, path)
    assert (await get(client, f"{keyed.url}/healthz"))[0] == 200


async def test_a_signed_in_browser_reads_but_does_not_ingest(
    keyed: Collector, client: aiohttp.ClientSession
) -> None:
    """The sign-in form's cookie opens the pages and the read API; ingest takes only the
    Bearer header (so another site cannot post traces with a person's cookie)."""
    body = orjson.dumps({"traces": [wire("for-cookie")]})
    assert (await post(client, keyed, body, {"Authorization": f"Bearer {KEYS[0]}"}))[0] == 200
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        form = {"key": KEYS[1], "next": "/"}
        async with browser.post(f"{keyed.url}/signin", data=form) as response:
            assert response.status == 200
            assert "<html" in (await response.text()).lower()
        assert any(cookie.key == "tracing_session" for cookie in jar)
        for path in ("/", "/api/traces", "/api/traces/for-cookie", "/traces/for-cookie"):
            async with browser.get(keyed.url + path, allow_redirects=False) as response:
                assert response.status == 200, path
        body = orjson.dumps({"traces": [wire("by-cookie")]})
        async with browser.post(f"{keyed.url}/api/traces/batch", data=body) as response:
            assert response.status == 401


@pytest.mark.parametrize(
    ("around", "status"),
    [
        (b" \t", 200),
        (b"\t\t", 200),
        (b"\x0b", 401),  # vertical tab: not HTTP's optional whitespace
        (b"\x0c", 401),  # form feed
        (b"\xc2\xa0", 401),  # no-break space (UTF-8)
    ],
)
async def test_only_spaces_and_tabs_around_the_key_are_removed(
    keyed: Collector, around: bytes, status: int
) -> None:
    """The key matches byte for byte once ASCII spaces and tabs are removed around it."""
    for value in (b"Bearer " + around + KEYS[0].encode(), b"Bearer " + KEYS[0].encode() + around):
        request = (
            b"GET /api/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Authorization: " + value + b"\r\n\r\n"
        )
        got, _ = await raw_request(keyed, request)
        assert got in ((status,) if status == 200 else (400, 401)), value
    for near in (KEYS[0].upper(), KEYS[0][:-1], KEYS[0] + "x", "key-one\x00"):
        request = (
            b"GET /api/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Authorization: Bearer " + near.encode() + b"\r\n\r\n"
        )
        assert (await raw_request(keyed, request))[0] in (400, 401), near


async def spawn(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Collector:
    """The collector started in ``cwd`` with exactly ``args`` (no ``--db`` added)."""
    proc = await _proc.spawn(
        "-m",
        "tracing.collector",
        "--port",
        "0",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        env=env,
    )
    collector = Collector(proc, "")
    await collector.start()
    return collector


@pytest.mark.parametrize(
    ("args", "env_db", "expected"),
    [
        ((), None, "tracing-collector.db"),  # the default --help states
        ((), "from-env.db", "from-env.db"),
        (("--db", "from-flag.db"), "from-env.db", "from-flag.db"),
    ],
)
async def test_the_sqlite_file_from_db_env_or_default(
    tmp_path: Path, args: tuple[str, ...], env_db: str | None, expected: str
) -> None:
    """``--db`` wins over ``TRACING_COLLECTOR_DB``, which wins over the default file in
    the current directory; the trace sent is in that file."""
    env = {} if env_db is None else {"TRACING_COLLECTOR_DB": str(tmp_path / env_db)}
    flags = [a if not a.endswith(".db") else str(tmp_path / a) for a in args]
    collector = await spawn(tmp_path, *flags, env=env)
    try:
        async with aiohttp.ClientSession() as session:
            status, _ = await post(session, collector, orjson.dumps({"traces": [wire("db")]}))
            assert status == 200
    finally:
        assert await collector.stop() == 0
    assert str(tmp_path / expected) in collector.output
    assert sorted(os.listdir(tmp_path)) == [expected]
    with sqlite3.connect(tmp_path / expected) as db:
        assert db.execute("SELECT id FROM traces").fetchall() == [("db",)]
