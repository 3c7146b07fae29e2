"""Several collector processes on one PostgreSQL database, and the database going away:
each trace stored once, replicas starting together, sessions shared, 503 meanwhile."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import aiohttp
import asyncpg
import orjson
import pytest

from tests import _proc
from tests._postgres import PostgresServer
from tests.collector.conftest import (
    Collector,
    StartCollector,
    get_json,
    post_batch,
)
from tests.collector.test_routes import run_cli
from tests.conftest import FAST
from tracing import AsyncTracing


def wire(trace_id: str, second: int) -> dict[str, object]:
    usage = {"model": "m", "provider": "p", "promptTokens": 2, "completionTokens": 1}
    return {
        "id": trace_id,
        "name": f"job-{second % 3}",
        "startTime": f"2026-11-21T12:{second // 60 % 60:02d}:{second % 60:02d}Z",
        "spans": [
            {"id": "a", "name": "llm", "llmUsage": usage},
            {"id": "b", "parentId": "a", "name": "tool"},
        ],
    }


async def send_all(
    http: aiohttp.ClientSession, collector: Collector, traces: list[dict[str, object]], seed: int
) -> Counter[str]:
    """Post every trace to ``collector`` in shuffled batches; count each answer kind."""
    order = traces[:]
    random.Random(seed).shuffle(order)
    answers: Counter[str] = Counter()
    for start in range(0, len(order), 40):
        body = orjson.dumps({"traces": order[start : start + 40]})
        status, answer = await post_batch(http, collector, body)
        assert status == 200, answer
        for result in answer["results"]:
            assert result["success"], result
            answers[f"{result['id']} {result['message']}"] += 1
    return answers


@pytest.mark.parametrize("replicas", [2, 3])
async def test_replicas_store_each_trace_once(
    start_pg_collector: StartCollector, pg_url: str, http: aiohttp.ClientSession, replicas: int
) -> None:
    """The same 240 traces sent to every replica at once, in different batch orders:
    each is stored once (exactly one replica answers "ok", the others "already
    stored"), and every replica reports the same totals and spans."""
    collectors = await asyncio.gather(*(start_pg_collector() for _ in range(replicas)))
    traces = [wire(f"trace-{i:04d}", i) for i in range(240)]
    counts = await asyncio.gather(
        *(send_all(http, c, traces, seed) for seed, c in enumerate(collectors))
    )
    answers = sum(counts, Counter())
    for trace in traces:
        assert answers[f"{trace['id']} ok"] == 1
        assert answers[f"{trace['id']} ok: already stored"] == replicas - 1
    for collector in collectors:
        _, page = await get_json(http, f"{collector.url}/api/traces?limit=1000")
        assert page["total"] == 240
        assert sorted(t["id"] for t in page["traces"]) == [t["id"] for t in traces]
        assert {t["spanCount"] for t in page["traces"]} == {2}
        assert {t["totalTokens"] for t in page["traces"]} == {3}
        _, errors = await get_json(http, f"{collector.url}/api/traces?name=job-1&limit=1000")
        assert errors["total"] == 80
    _, one = await get_json(http, f"{collectors[-1].url}/api/traces/trace-0007")
    assert [s["id"] for s in one["spans"]] == ["a", "b"]
    conn = await asyncpg.connect(pg_url)
    try:  # the kept counts agree with counting the rows
        kept = await conn.fetch("SELECT status, sum(n) FROM trace_counts GROUP BY status")
        rows = await conn.fetch("SELECT status, count(*) FROM traces GROUP BY status")
        assert sorted(map(tuple, kept)) == sorted(map(tuple, rows)) == [("ok", 240)]
    finally:
        await conn.close()


async def test_replicas_start_together_on_an_empty_database(
    start_pg_collector: StartCollector, pg_url: str, http: aiohttp.ClientSession
) -> None:
    """Three processes migrating one empty database at once all start; the schema is
    created once (one version row) and each serves."""
    collectors = await asyncio.gather(*(start_pg_collector() for _ in range(3)))
    conn = await asyncpg.connect(pg_url)
    try:
        versions = await conn.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [tuple(r) for r in versions] == [(1,), (2,), (3,)]
    finally:
        await conn.close()
    for i, collector in enumerate(collectors):
        body = orjson.dumps({"traces": [wire(f"from-{i}", i)]})
        assert (await post_batch(http, collector, body))[0] == 200
    _, page = await get_json(http, f"{collectors[0].url}/api/traces")
    assert page["total"] == 3


async def test_sign_out_on_one_replica_ends_the_session_on_all(
    start_pg_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    """A session made on one replica opens the other; signed out on one, it opens none."""
    first, second = await asyncio.gather(
        start_pg_collector("--key", "k"), start_pg_collector("--key", "k")
    )
    async with http.post(f"{first.url}/signin", data={"key": "k"}, allow_redirects=False) as r:
        token = r.cookies["tracing_session"].value
    jar = {"tracing_session": token}
    async with aiohttp.ClientSession(cookies=jar) as browser:
        async with browser.get(f"{second.url}/", allow_redirects=False) as response:
            assert response.status == 200
        async with browser.post(f"{second.url}/signout", allow_redirects=False) as response:
            assert response.status == 303
    async with aiohttp.ClientSession(cookies=jar) as browser:
        for collector in (first, second):
            async with browser.get(f"{collector.url}/", allow_redirects=False) as response:
                assert response.status == 303
            async with browser.get(f"{collector.url}/api/traces") as response:
                assert response.status == 401


async def wait_healthy(http: aiohttp.ClientSession, collector: Collector) -> None:
    """Poll /healthz until 200: the pool reconnects on the next request after the
    database is back, and nothing signals that moment but an answer."""
    async with asyncio.timeout(60):
        while True:
            async with http.get(f"{collector.url}/healthz") as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.2)


async def test_database_away_and_back(
    start_pg_collector: StartCollector, pg_server: PostgresServer, http: aiohttp.ClientSession
) -> None:
    """With the database stopped: 503 with Retry-After on ingest, reads and /healthz,
    the process keeps running; when it is back, the SDK's retries deliver every trace."""
    collector = await start_pg_collector()
    tracer = AsyncTracing(endpoint=collector.url, **{**FAST, "retry_backoff_max": 0.5})
    try:
        for i in range(5):
            await tracer.trace(f"before-{i}").end()
        await tracer.flush()
        pg_server.stop()
        try:
            for i in range(30):
                await tracer.trace(f"during-{i}").end()
            try:
                await collector.wait_for_line(r"cannot store a batch")
            except TimeoutError:
                raise AssertionError(collector.output) from None
            for path in ("/healthz", "/api/traces", "/api/traces/x"):
                async with http.get(f"{collector.url}{path}") as response:
                    assert response.status == 503, path
                    assert response.headers["Retry-After"] == "1"
            status, _ = await post_batch(http, collector, orjson.dumps({"traces": [wire("x", 1)]}))
            assert status == 503
            assert collector.proc.returncode is None
        finally:
            pg_server.start()
        await wait_healthy(http, collector)
        await tracer.flush()
        stats = await tracer.shutdown()
    finally:
        await tracer.shutdown()
    assert stats.sent == 35
    assert stats.failed == 0
    assert stats.retries > 0
    _, page = await get_json(http, f"{collector.url}/api/traces?limit=100")
    assert page["total"] == 35
    assert "Traceback" not in collector.output


async def test_database_from_the_environment_and_password_kept_out_of_the_log(
    pg_server: PostgresServer, pg_url: str, http: aiohttp.ClientSession
) -> None:
    """``TRACING_COLLECTOR_DB`` gives the URL when ``--db`` is absent; the start line shows
    the URL without its password."""
    with_password = pg_url.replace("tracing@", "tracing:hunter2@")
    proc = await _proc.spawn(
        "-m", "tracing.collector", "--port", "0",
        stdout=asyncio.subprocess.DEVNULL, env={"TRACING_COLLECTOR_DB": with_password},
    )  # fmt: skip
    collector = Collector(proc, with_password)
    try:
        await collector.start()
        body = orjson.dumps({"traces": [wire("env", 1)]})
        assert (await post_batch(http, collector, body))[0] == 200
        assert "hunter2" not in collector.output
        assert f"db: {pg_url.replace('tracing@', 'tracing:***@')};" in collector.output
    finally:
        await collector.stop()
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM traces") == 1
    finally:
        await conn.close()


async def test_unreachable_database_exits_1() -> None:
    """A PostgreSQL URL nobody answers at ends the process with a logged error."""
    code, out = await run_cli("--port", "0", "--db", "postgresql://tracing@127.0.0.1:1/none")
    assert code == 1
    assert "cannot use the database" in out
    assert "Traceback" not in out
