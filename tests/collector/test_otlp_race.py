"""Two requests carrying spans of one new OTLP trace, written at the same time by two
collector processes sharing one PostgreSQL database.

The interleaving is forced, not hoped for: the test holds a lock on ``trace_counts``
(the last table every write touches), so the first request's transaction stops just
before its commit with all its rows written; the second request is sent while it waits,
and only then is the lock released. Without a lock per OTLP trace id, the second
transaction could not see the first one's uncommitted rows: the spans kept the root's
hex span id, or stayed a second trace under the hex trace id.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import asyncpg
import pytest

from tests.collector.conftest import Collector, StartCollector, get_json
from tests.collector.otlp_pb import request
from tests.collector.test_otlp_links import by_id, sdk_sent
from tests.collector.test_otlp_map import expected
from tests.collector.test_otlp_route import export, stored
from tracing import Trace

WAIT = 60.0  # seconds for a transaction to reach a lock wait (a loaded machine)


async def _waiting(conn: asyncpg.Connection, count: int) -> None:
    """Return once ``count`` other sessions of this database wait for a lock."""
    deadline = time.monotonic() + WAIT
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    while await conn.fetchval(sql) < count:
        assert time.monotonic() < deadline, f"fewer than {count} session(s) waiting for a lock"
        await asyncio.sleep(0.02)  # polling the server: there is nothing to await


@pytest.mark.parametrize("first", ["root", "spans"])
@pytest.mark.parametrize("trace_id", [None, "run-race"])
async def test_root_and_spans_written_at_once_make_one_linked_trace(
    start_pg_collector: StartCollector,
    pg_url: str,
    http: aiohttp.ClientSession,
    first: str,
    trace_id: str | None,
) -> None:
    """The root in one request, its three spans (two of them under the third) in another,
    each to its own collector process, the second written while the first is about to
    commit: one trace, read back as sent (links to the root null, to plan plan's id)."""
    trace, spans = sdk_sent(trace_id)
    parts = {
        "root": request(spans[:1], scope="tracing"),
        "spans": request(spans[1:], scope="tracing"),
    }
    second = "spans" if first == "root" else "root"
    one, two = await start_pg_collector(), await start_pg_collector()
    conn = await asyncpg.connect(pg_url)
    try:
        hold = conn.transaction()
        await hold.start()
        await conn.execute("LOCK TABLE trace_counts IN SHARE MODE")
        sent: list[asyncio.Task[object]] = []
        try:
            sent.append(asyncio.create_task(export(http, one, parts[first])))
            await _waiting(conn, 1)
            sent.append(asyncio.create_task(export(http, two, parts[second])))
            await _waiting(conn, 2)
        finally:
            await hold.rollback()
        await asyncio.gather(*sent)
    finally:
        await conn.close()
    await _check(http, one, trace)


async def _check(http: aiohttp.ClientSession, collector: Collector, trace: Trace) -> None:
    document = await stored(http, collector, trace.id)
    assert by_id(document) == by_id(expected(trace))
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert [(t["id"], t["spanCount"]) for t in page["traces"]] == [(trace.id, 3)]
    assert page["total"] == 1
