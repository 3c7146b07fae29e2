"""Query strings on every route (an unknown parameter or a bad value is a 400 naming
it), the list's ``status`` and ``cursor``, and sign-out ending the session server-side."""

from __future__ import annotations

import html

import aiohttp
import orjson
from yarl import URL

from tests.collector.conftest import Collector, StartCollector, get_json, post_batch


def wire(trace_id: str, second: int = 0, **fields: object) -> dict[str, object]:
    start = f"2026-11-21T12:{second // 60:02d}:{second % 60:02d}Z"
    return {"id": trace_id, "name": "job", "startTime": start, **fields}


BAD_QUERIES = [
    ("GET", "/api/traces?statuss=error", "'statuss'"),
    ("GET", "/api/traces?status=failed", "status"),
    ("GET", "/api/traces?status=OK", "status"),
    ("GET", "/api/traces?cursor=not-a-cursor", "cursor"),
    ("GET", "/api/traces?cursor=WzEsMiwzXQ", "cursor"),  # [1,2,3]
    ("GET", "/api/traces?limit=5&limit=6", "'limit'"),
    ("GET", "/api/traces?before=WzEsImEiXQ", "'before'"),  # the viewer's, not the API's
    ("GET", "/api/traces/some-id?verbose=1", "'verbose'"),
    ("POST", "/api/traces/batch?dry_run=1", "'dry_run'"),
    ("GET", "/healthz?deep=1", "'deep'"),
    ("GET", "/?statuss=error", "'statuss'"),
    ("GET", "/?status=oops", "status"),
    ("GET", "/?cursor=x&before=y", "cursor"),
    ("GET", "/traces/some-id?tab=spans", "'tab'"),
    ("GET", "/signin?next=/&x=1", "'x'"),
]


async def test_unknown_or_bad_query_is_400_naming_it(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """A typo in a filter is never read as "everything": 400 with the parameter named,
    on every route (one collector for all the cases, to keep the suite fast)."""
    for method, path, named in BAD_QUERIES:
        body = orjson.dumps({"traces": [wire("t")]}) if method == "POST" else None
        url = URL(collector.url + path, encoded=True)
        async with http.request(method, url, data=body) as response:
            assert response.status == 400, path
            text = await response.text()
        api = path.startswith(("/api", "/healthz"))
        message = orjson.loads(text)["message"] if api else html.unescape(text)
        assert named in message, (path, message)
    # Nothing was stored by the refused POST.
    assert (await get_json(http, f"{collector.url}/api/traces"))[1]["total"] == 0


async def test_status_filter_and_cursor_paging(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """``status`` filters; following ``nextCursor`` visits each trace once (ties in
    startTime broken by id), null on the last page; empty values mean "not given"."""
    traces = [wire(f"t{i:03d}", i // 4, status="error" if i % 3 == 0 else "ok") for i in range(90)]
    for chunk in range(0, 90, 30):
        body = orjson.dumps({"traces": traces[chunk : chunk + 30]})
        assert (await post_batch(http, collector, body))[0] == 200
    base = f"{collector.url}/api/traces"
    _, errors = await get_json(http, f"{base}?status=error&limit=1000")
    assert errors["total"] == 30
    assert {t["status"] for t in errors["traces"]} == {"error"}
    assert errors["nextCursor"] is None
    seen: list[str] = []
    url = f"{base}?limit=7&status=ok"
    while True:
        status, page = await get_json(http, url)
        assert status == 200
        assert page["total"] == 60
        seen += [t["id"] for t in page["traces"]]
        if page["nextCursor"] is None:
            break
        url = f"{base}?limit=7&status=ok&cursor={page['nextCursor']}"
    expected = [t["id"] for t in reversed(traces) if t["status"] == "ok"]
    assert seen == expected
    _, everything = await get_json(http, f"{base}?status=&name=&cursor=&limit=100")
    assert everything["total"] == 90
    _, first = await get_json(http, f"{base}?limit=10")
    _, after = await get_json(http, f"{base}?limit=5&offset=5&cursor={first['nextCursor']}")
    assert [t["id"] for t in after["traces"]] == [t["id"] for t in reversed(traces)][15:20]


async def sign_in(http: aiohttp.ClientSession, collector: Collector, key: str) -> str:
    async with http.post(
        f"{collector.url}/signin", data={"key": key}, allow_redirects=False
    ) as response:
        assert response.status == 303
        return response.cookies["tracing_session"].value


async def opens(collector: Collector, token: str) -> tuple[int, int]:
    """(page status, API status) for a request carrying only this session cookie."""
    async with aiohttp.ClientSession(cookies={"tracing_session": token}) as browser:
        async with browser.get(f"{collector.url}/", allow_redirects=False) as page:
            pass
        async with browser.get(f"{collector.url}/api/traces") as api:
            return page.status, api.status


async def test_sign_out_ends_the_session_on_the_server(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    """After sign-out, a copy of the old cookie opens neither the pages nor the API,
    also after a restart; another session of the same key still works."""
    collector = await start_collector("--key", "k")
    token, other = await sign_in(http, collector, "k"), await sign_in(http, collector, "k")
    assert token != other
    assert await opens(collector, token) == (200, 200)
    async with (
        aiohttp.ClientSession(cookies={"tracing_session": token}) as browser,
        browser.post(f"{collector.url}/signout", allow_redirects=False) as response,
    ):
        assert response.status == 303
        assert response.cookies["tracing_session"].value == ""
    assert await opens(collector, token) == (303, 401)
    assert await opens(collector, other) == (200, 200)
    await collector.stop()
    again = await start_collector("--key", "k", db=collector.db)
    assert await opens(again, token) == (303, 401)
    assert await opens(again, other) == (200, 200)
