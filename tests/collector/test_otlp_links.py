"""Parent links of OTLP spans split over requests, on both stores (real collector
processes): a span linked to its trace's root reads back top-level (``parentId`` null)
whichever of them arrived first, and deeper links keep their parent's id."""

from __future__ import annotations

import contextlib
import sqlite3

import aiohttp
import asyncpg

from tests.collector.conftest import Collector, StartCollector, get_json
from tests.collector.otlp_pb import request, sdk_spans, trace_id_of
from tests.collector.test_otlp_map import (
    CHILD,
    GRANDCHILD,
    ROOT,
    START,
    TRACE,
    expected,
    foreign,
    full_trace,
)
from tests.collector.test_otlp_route import export, stored

OTHER = bytes.fromhex("2222222222222222")


def _links(document: dict[str, object]) -> dict[str, object]:
    spans = document["spans"]
    assert isinstance(spans, list)
    return {span["id"]: span["parentId"] for span in spans}


async def _one_trace(http: aiohttp.ClientSession, collector: Collector) -> None:
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert page["total"] == 1
    assert [t["id"] for t in page["traces"]] == [TRACE.hex()]


async def test_children_first_then_root_in_separate_requests(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    child = foreign(CHILD, ROOT, "chat", start=START + 10**8)
    grandchild = foreign(GRANDCHILD, CHILD, "db", start=START + 2 * 10**8)
    await export(http, collector, request([grandchild]))
    await export(http, collector, request([child]))
    early = await stored(http, collector, TRACE.hex())
    assert _links(early) == {GRANDCHILD.hex(): CHILD.hex(), CHILD.hex(): ROOT.hex()}

    await export(http, collector, request([foreign(ROOT, name="GET /items")]))
    document = await stored(http, collector, TRACE.hex())
    assert document["name"] == "GET /items"
    assert _links(document) == {GRANDCHILD.hex(): CHILD.hex(), CHILD.hex(): None}
    await _one_trace(http, collector)


async def test_root_first_then_children_in_separate_requests(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    await export(http, collector, request([foreign(ROOT, name="GET /items")]))
    await export(http, collector, request([foreign(CHILD, ROOT, "chat", start=START + 10**8)]))
    later = [
        foreign(GRANDCHILD, CHILD, "db", start=START + 2 * 10**8),
        foreign(OTHER, ROOT, "cache", start=START + 3 * 10**8),
    ]
    await export(http, collector, request(later))
    document = await stored(http, collector, TRACE.hex())
    assert document["name"] == "GET /items"
    assert _links(document) == {
        CHILD.hex(): None,
        GRANDCHILD.hex(): CHILD.hex(),
        OTHER.hex(): None,
    }
    await _one_trace(http, collector)


async def test_a_resent_root_changes_nothing(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """The root again (a retry) after its children: the links stay as they are."""
    await export(http, collector, request([foreign(CHILD, ROOT, "chat", start=START + 10**8)]))
    for _ in range(2):
        await export(http, collector, request([foreign(ROOT, name="GET /items")]))
    document = await stored(http, collector, TRACE.hex())
    assert _links(document) == {CHILD.hex(): None}
    await _one_trace(http, collector)


async def test_an_sdk_trace_with_a_non_hex_id_split_over_requests_is_one_trace(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Our SDK's mapping, re-batched: the spans (under the SHA-256 trace id) before the
    root (which names the original id): one trace under the original id, as sent."""
    trace = full_trace("run-42")
    root, *spans = sdk_spans(trace)
    await export(http, collector, request(spans, scope="tracing"))
    await export(http, collector, request([root], scope="tracing"))
    assert await stored(http, collector, "run-42") == expected(trace)
    status, _ = await get_json(http, f"{collector.url}/api/traces/{trace_id_of('run-42').hex()}")
    assert status == 404
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert [(t["id"], t["spanCount"]) for t in page["traces"]] == [("run-42", len(spans))]
    assert page["total"] == 1


async def test_an_sdk_trace_with_a_non_hex_id_root_first(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """The root first, its spans later: they join the trace under the original id."""
    trace = full_trace("run-43")
    root, *spans = sdk_spans(trace)
    await export(http, collector, request([root], scope="tracing"))
    await export(http, collector, request(spans, scope="tracing"))
    assert await stored(http, collector, "run-43") == expected(trace)
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert [(t["id"], t["spanCount"]) for t in page["traces"]] == [("run-43", len(spans))]
    assert page["total"] == 1


async def _downgrade(db_url: str) -> None:
    """Turn the database back into the schema before the OTLP link columns (SQLite 2,
    PostgreSQL 1), as a collector from before them left it."""
    drop = [
        "DROP INDEX spans_by_otlp_id",
        "DROP INDEX spans_by_otlp_parent",
        "ALTER TABLE spans DROP COLUMN otlp_id",
        "ALTER TABLE spans DROP COLUMN otlp_parent",
        "DROP INDEX traces_by_otlp_trace",
        "ALTER TABLE traces DROP COLUMN root_span",
        "ALTER TABLE traces DROP COLUMN otlp_trace",
    ]
    if db_url.startswith("postgresql://"):
        conn = await asyncpg.connect(db_url)
        try:
            for statement in [*drop, "DELETE FROM schema_version WHERE version > 1"]:
                await conn.execute(statement)
        finally:
            await conn.close()
        return
    with contextlib.closing(sqlite3.connect(db_url)) as conn:
        for statement in [*drop, "DELETE FROM schema_version WHERE version > 2"]:
            conn.execute(statement)
        conn.commit()


async def test_a_database_from_before_is_migrated_and_its_spans_relinked(
    start_collector: StartCollector, db_url: str, http: aiohttp.ClientSession
) -> None:
    """A child stored by a collector of the previous schema, the root sent to this one:
    the schema is migrated at start and the child becomes top-level."""
    first = await start_collector()
    await export(http, first, request([foreign(CHILD, ROOT, "chat", start=START + 10**8)]))
    assert await first.stop() == 0
    await _downgrade(db_url)
    second = await start_collector()
    await export(http, second, request([foreign(ROOT, name="GET /items")]))
    document = await stored(http, second, TRACE.hex())
    assert (document["name"], _links(document)) == ("GET /items", {CHILD.hex(): None})
    await _one_trace(http, second)
