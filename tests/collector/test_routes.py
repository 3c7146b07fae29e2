"""The read API, the pages' key guard and sign-in, and the command line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from yarl import URL

from tests.collector.conftest import (
    Collector,
    StartCollector,
    collector_env,
    get_json,
    post_batch,
)


def wire(trace_id: str, name: str = "job", second: int = 0) -> dict[str, object]:
    return {"id": trace_id, "name": name, "startTime": f"2026-11-21T12:00:{second:02d}Z"}


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=abc", "limit=-1", "offset=-1", "offset=1.5", "limit=\u0661"],
)
async def test_bad_paging_is_400(
    collector: Collector, http: aiohttp.ClientSession, query: str
) -> None:
    """``limit`` outside 1..1000 or a bad ``offset`` is 400 with a message."""
    status, answer = await get_json(http, f"{collector.url}/api/traces?{query}")
    assert status == 400
    assert "must be an integer" in answer["message"]
    async with http.get(f"{collector.url}/?{query}") as response:
        assert response.status == 400
        assert "must be an integer" in await response.text()


async def test_defaults_and_offset_past_the_end(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Defaults are limit 50, offset 0; an offset past the end gives an empty page."""
    await post_batch(http, collector, orjson.dumps({"traces": [wire("a"), wire("b", second=1)]}))
    assert (await get_json(http, f"{collector.url}/api/traces"))[1] == {
        "total": 2,
        "limit": 50,
        "offset": 0,
        "nextCursor": None,
        "traces": (await get_json(http, f"{collector.url}/api/traces?limit=50"))[1]["traces"],
    }
    _, page = await get_json(http, f"{collector.url}/api/traces?offset=10")
    assert page["total"] == 2
    assert page["traces"] == []


async def test_odd_ids_round_trip(collector: Collector, http: aiohttp.ClientSession) -> None:
    """Ids with slashes, spaces, quotes and non-ASCII are fetched by their quoted form."""
    ids = ["a/b/c", "with space?x=1#y", "quote'\"", "日本語", "..", "batch"]
    status, answer = await post_batch(
        http, collector, orjson.dumps({"traces": [wire(i) for i in ids]})
    )
    assert status == 200
    assert all(r["success"] for r in answer["results"])
    for trace_id in ids:
        # encoded=True: yarl would otherwise turn "%2E%2E" into ".." and resolve it.
        quoted = quote(trace_id, safe="")
        api = URL(f"{collector.url}/api/traces/{quoted}", encoded=True)
        async with http.get(api) as response:
            assert response.status == 200
            assert (await response.json())["id"] == trace_id
        async with http.get(URL(f"{collector.url}/traces/{quoted}", encoded=True)) as response:
            assert response.status == 200


async def test_unknown_routes_and_methods(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """404 and 405 are JSON under /api/ and a page elsewhere, without a traceback."""
    status, answer = await get_json(http, f"{collector.url}/api/traces/nope")
    assert (status, answer["message"]) == (404, "no trace has that id")
    status, answer = await get_json(http, f"{collector.url}/api/nothing/here/")
    assert status == 404
    async with http.put(f"{collector.url}/api/traces/batch") as response:
        assert response.status == 405
        assert "POST" in response.headers["Allow"]
        assert "message" in await response.json()
    async with http.get(f"{collector.url}/traces/nope") as response:
        assert response.status == 404
        assert response.content_type == "text/html"
        assert "No trace has that id" in await response.text()


async def test_pages_send_security_headers(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Pages forbid scripts, framing and sniffing through headers."""
    async with http.get(f"{collector.url}/") as response:
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp
        assert "script" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"


async def test_pages_need_a_key_or_a_session(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    """With keys: pages redirect to sign-in; a Bearer header or the session cookie opens
    them; the cookie is HttpOnly, SameSite and not the key, and cannot post traces."""
    collector = await start_collector("--key", "s3cret-key")
    await post_batch(
        http,
        collector,
        orjson.dumps({"traces": [wire("t1", "visible")]}),
        {"Authorization": "Bearer s3cret-key"},
    )
    async with http.get(f"{collector.url}/traces/t1?x=1", allow_redirects=False) as response:
        assert response.status == 303
        location = URL(response.headers["Location"])
        assert location.path == "/signin"
        assert location.query["next"] == "/traces/t1?x=1"
    async with http.get(f"{collector.url}/", headers={"Authorization": "Bearer s3cret-key"}) as r:
        assert r.status == 200
        assert "visible" in await r.text()
    async with http.get(f"{collector.url}/signin?next=/traces/t1") as response:
        assert response.status == 200
        assert 'type="password"' in await response.text()

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        signin = f"{collector.url}/signin"
        async with browser.post(signin, data={"key": "wrong", "next": "/"}) as response:
            assert response.status == 401
            assert "not valid" in await response.text()
        async with browser.post(
            signin, data={"key": "s3cret-key", "next": "//evil.example/"}, allow_redirects=False
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/"
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "s3cret-key" not in cookie
        async with browser.get(f"{collector.url}/traces/t1") as response:
            assert response.status == 200
            assert "visible" in await response.text()
            assert "Sign out" in await response.text()
        assert (await get_json(browser, f"{collector.url}/api/traces"))[0] == 200
        status, _ = await post_batch(browser, collector, orjson.dumps({"traces": []}))
        assert status == 401
        async with browser.post(f"{collector.url}/signout", allow_redirects=False) as response:
            assert response.status == 303
        async with browser.get(f"{collector.url}/", allow_redirects=False) as response:
            assert response.status == 303

    async with http.post(
        f"{collector.url}/signin",
        data=b"garbage",
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
    ) as response:
        assert response.status == 400
        assert "could not be read" in await response.text()

    forged = {"tracing_session": "99999999999.deadbeef"}
    async with (
        aiohttp.ClientSession(cookies=forged) as forger,
        forger.get(f"{collector.url}/", allow_redirects=False) as response,
    ):
        assert response.status == 303


async def test_session_dies_with_its_key(start_collector: StartCollector) -> None:
    """A session cookie outlives a restart with the same key, but not a key change."""
    first = await start_collector("--key", "old-key")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(
            f"{first.url}/signin", data={"key": "old-key"}, allow_redirects=False
        ) as response:
            assert response.status == 303
        cookie = browser.cookie_jar.filter_cookies(URL(first.url))
        token = cookie["tracing_session"].value
    await first.stop()
    for key, expected in (("old-key", 200), ("new-key", 303)):
        again = await start_collector("--key", key, db=first.db)
        async with (
            aiohttp.ClientSession(cookies={"tracing_session": token}) as browser,
            browser.get(f"{again.url}/", allow_redirects=False) as response,
        ):
            assert response.status == expected
        await again.stop()


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tracing.collector",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=collector_env(env),
    )
    async with asyncio.timeout(30):
        out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_help_states_the_defaults() -> None:
    """``--help`` names the default address, database file and body limit."""
    code, out = await run_cli("--help", env={"COLUMNS": "200"})  # no wrapping mid-name
    assert code == 0
    for text in ("127.0.0.1", "7070", "tracing-collector.db", "10485760", "TRACING_COLLECTOR_KEYS"):
        assert text in out


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com"])
async def test_refuses_public_host_without_keys(host: str) -> None:
    """A non-loopback host with no key is refused before anything listens."""
    code, out = await run_cli("--host", host, "--port", "0")
    assert code == 2
    assert "--insecure-public" in out
    assert "refusing" in out


async def test_public_host_with_a_key_or_insecure_flag(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    """A key (flag or env) or ``--insecure-public`` lets it listen on every address."""
    keyed = await start_collector("--host", "0.0.0.0", env={"TRACING_COLLECTOR_KEYS": "k"})
    assert "keys: 1" in keyed.output
    open_one = await start_collector("--host", "0.0.0.0", "--insecure-public")
    port = open_one.url.rsplit(":", 1)[1]
    assert (await get_json(http, f"http://127.0.0.1:{port}/healthz"))[0] == 200


async def test_bad_arguments_exit_2() -> None:
    """A bad port, body limit or key is a usage error."""
    for args in (
        ["--port", "70000"],
        ["--max-body", "0"],
        ["--port", "x"],
        ["--key", ""],  # an unset variable in --key "$KEY" must not mean "no keys"
        ["--key", " padded"],  # no header can carry it: HTTP removes the space
        ["--key", "k", "--key", "tab\t"],
    ):
        code, out = await run_cli(*args)
        assert code == 2
        assert "error" in out


async def test_unusable_database_exits_1(tmp_path: Path) -> None:
    """A database file that cannot be opened ends the process with a logged error."""
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 100)
    code, out = await run_cli("--port", "0", "--db", str(bad))
    assert code == 1
    assert "cannot use the database" in out
    assert "Traceback" not in out


async def test_foreign_host_is_refused_without_keys(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """On loopback with no keys, a non-loopback Host (DNS rebinding) gets 403."""
    port = collector.url.rsplit(":", 1)[1]
    for host, expected in (("evil.example", 403), (f"localhost:{port}", 200), ("[::1]", 200)):
        async with http.get(f"{collector.url}/api/traces", headers={"Host": host}) as response:
            assert response.status == expected, host
    async with http.get(f"{collector.url}/", headers={"Host": "evil.example:80"}) as response:
        assert response.status == 403
        assert "loopback" in await response.text()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Origin": "http://evil.example"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),
        ({"Sec-Fetch-Site": "same-origin"}, 200),
        ({}, 200),
    ],
)
async def test_cross_site_posts_are_refused(
    collector: Collector, http: aiohttp.ClientSession, headers: dict[str, str], expected: int
) -> None:
    """A post a browser makes for another site is refused; clients without those
    headers (the SDK, curl) are not affected."""
    status, answer = await post_batch(http, collector, orjson.dumps({"traces": []}), headers)
    assert status == expected
    if expected == 403:
        assert answer["message"] == "cross-site requests are refused"
