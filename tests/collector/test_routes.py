"""The read API, the pages' key guard and sign-in, and the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from yarl import URL

from tests import _proc
from tests.collector.conftest import (
    Collector,
    SharedCollector,
    StartCollector,
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
    shared_collector: SharedCollector, http: aiohttp.ClientSession, query: str
) -> None:
    """``limit`` outside 1..1000 or a bad ``offset`` is 400 with a message."""
    collector = shared_collector
    status, answer = await get_json(http, f"{collector.url}/api/traces?{query}")
    assert status == 400
    assert "must be an integer" in answer["message"]
    async with http.get(f"{collector.url}/?{query}") as response:
        assert response.status == 400
        assert "must be an integer" in await response.text()


async def test_defaults_and_offset_past_the_end(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Defaults are limit 50, offset 0 (a page stops at 50 of 55 traces, newest first);
    an offset past the end gives an empty page with the total."""
    batch = [wire(f"t{n:02d}", second=n) for n in range(55)]
    status, _ = await post_batch(http, collector, orjson.dumps({"traces": batch}))
    assert status == 200
    status, page = await get_json(http, f"{collector.url}/api/traces")
    assert status == 200
    assert (page["total"], page["limit"], page["offset"]) == (55, 50, 0)
    assert [t["id"] for t in page["traces"]] == [f"t{n:02d}" for n in range(54, 4, -1)]
    _, rest = await get_json(http, f"{collector.url}/api/traces?offset=50")
    assert [t["id"] for t in rest["traces"]] == ["t04", "t03", "t02", "t01", "t00"]
    _, past = await get_json(http, f"{collector.url}/api/traces?offset=100")
    assert (past["total"], past["traces"]) == (55, [])


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
    shared_collector: SharedCollector, http: aiohttp.ClientSession
) -> None:
    """404 and 405 are JSON under /api/ and a page elsewhere, without a traceback."""
    collector = shared_collector
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
    shared_collector: SharedCollector, http: aiohttp.ClientSession
) -> None:
    """Pages forbid scripts, framing and sniffing through headers."""
    collector = shared_collector
    async with http.get(f"{collector.url}/") as response:
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp
        assert "script" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"


KEY = "s3cret-key"


@pytest.fixture(scope="module")
def keyed_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedCollector]:
    """One collector with ``--key s3cret-key`` for the sign-in tests (sessions are
    stateless, so they cannot disturb each other)."""
    served = SharedCollector(tmp_path_factory.mktemp("keyed") / "collector.db", "--key", KEY)
    try:
        yield served
    finally:
        assert served.stop() == 0, served.output


async def store_visible_trace(http: aiohttp.ClientSession, collector: SharedCollector) -> None:
    body = orjson.dumps({"traces": [wire("t1", "visible")]})
    status, _ = await post_batch(http, collector, body, {"Authorization": f"Bearer {KEY}"})
    assert status == 200


def browser_session() -> aiohttp.ClientSession:
    """A client that keeps cookies for 127.0.0.1, as a browser does."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_pages_redirect_to_sign_in_without_a_key(
    keyed_collector: SharedCollector, http: aiohttp.ClientSession
) -> None:
    """With keys, a page asked for without one redirects to the sign-in form, keeping
    where it was going; a Bearer header opens it."""
    collector = keyed_collector
    await store_visible_trace(http, collector)
    async with http.get(f"{collector.url}/traces/t1?x=1", allow_redirects=False) as response:
        assert response.status == 303
        location = URL(response.headers["Location"])
        assert location.path == "/signin"
        assert location.query["next"] == "/traces/t1?x=1"
    async with http.get(f"{collector.url}/", headers={"Authorization": f"Bearer {KEY}"}) as r:
        assert r.status == 200
        assert "visible" in await r.text()
    async with http.get(f"{collector.url}/signin?next=/traces/t1") as response:
        assert response.status == 200
        assert 'type="password"' in await response.text()


async def test_wrong_key_in_the_form_is_401(keyed_collector: SharedCollector) -> None:
    """Signing in with a key that is not configured is 401, and sets no cookie."""
    async with browser_session() as browser:
        async with browser.post(
            f"{keyed_collector.url}/signin", data={"key": "wrong", "next": "/"}
        ) as response:
            assert response.status == 401
            assert "not valid" in await response.text()
        assert len(browser.cookie_jar) == 0


async def test_sign_in_sets_a_session_cookie_that_is_not_the_key(
    keyed_collector: SharedCollector,
) -> None:
    """The session cookie is HttpOnly and SameSite=Strict and does not hold the key; a
    ``next`` off the site is replaced by ``/``."""
    async with (
        browser_session() as browser,
        browser.post(
            f"{keyed_collector.url}/signin",
            data={"key": KEY, "next": "//evil.example/"},
            allow_redirects=False,
        ) as response,
    ):
        assert response.status == 303
        assert response.headers["Location"] == "/"
        cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert KEY not in cookie


async def test_session_opens_pages_and_api_but_not_ingest(
    keyed_collector: SharedCollector, http: aiohttp.ClientSession
) -> None:
    """Signed in, pages and the read API answer; posting traces still needs the header;
    signing out ends the session."""
    collector = keyed_collector
    await store_visible_trace(http, collector)
    async with browser_session() as browser:
        async with browser.post(
            f"{collector.url}/signin", data={"key": KEY, "next": "/"}, allow_redirects=False
        ) as response:
            assert response.status == 303
        async with browser.get(f"{collector.url}/traces/t1") as response:
            assert response.status == 200
            page = await response.text()
        assert "visible" in page
        assert "Sign out" in page
        assert (await get_json(browser, f"{collector.url}/api/traces"))[0] == 200
        status, _ = await post_batch(browser, collector, orjson.dumps({"traces": []}))
        assert status == 401
        async with browser.post(f"{collector.url}/signout", allow_redirects=False) as response:
            assert response.status == 303
        async with browser.get(f"{collector.url}/", allow_redirects=False) as response:
            assert response.status == 303


async def test_unreadable_sign_in_form_is_400(
    keyed_collector: SharedCollector, http: aiohttp.ClientSession
) -> None:
    """A sign-in body that is not a form is 400 with a message, not a 500."""
    async with http.post(
        f"{keyed_collector.url}/signin",
        data=b"garbage",
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
    ) as response:
        assert response.status == 400
        assert "could not be read" in await response.text()


async def test_forged_session_cookie_is_refused(keyed_collector: SharedCollector) -> None:
    """A cookie that is not the collector's HMAC opens nothing."""
    forged = {"tracing_session": "99999999999.deadbeef"}
    async with (
        aiohttp.ClientSession(cookies=forged) as forger,
        forger.get(f"{keyed_collector.url}/", allow_redirects=False) as response,
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
    """Run the collector's command line to its end; return (exit code, stdout + stderr)."""
    code, out, err = await _proc.run("-m", "tracing.collector", *args, env=env)
    return code, out + err


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
    shared_collector: SharedCollector, http: aiohttp.ClientSession
) -> None:
    """On loopback with no keys, a non-loopback Host (DNS rebinding) gets 403."""
    collector = shared_collector
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
    shared_collector: SharedCollector,
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    expected: int,
) -> None:
    """A post a browser makes for another site is refused; clients without those
    headers (the SDK, curl) are not affected."""
    collector = shared_collector
    status, answer = await post_batch(http, collector, orjson.dumps({"traces": []}), headers)
    assert status == expected
    if expected == 403:
        assert answer["message"] == "cross-site requests are refused"
