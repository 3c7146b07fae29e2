"""The stores behind ``TraceStore``, each tested through the interface on SQLite and
PostgreSQL: idempotence, order, paging, spans arriving piecemeal, sessions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from tracing.collector._records import SpanRecord
from tracing.collector._sqlite import SqliteStore
from tracing.collector._storage import ListQuery, StoreError, TraceStore, decode_cursor
from tracing.collector._validate import ValidTrace, validate_trace


def valid(trace_id: str, name: str = "job", second: int = 0, **fields: object) -> ValidTrace:
    result = validate_trace(
        {"id": trace_id, "name": name, "startTime": f"2026-11-21T12:00:{second:02d}Z", **fields}
    )
    assert isinstance(result, ValidTrace)
    return result


def ids(items: list[bytes]) -> list[str]:
    return [orjson.loads(item)["id"] for item in items]


def span(trace_id: str, span_id: str, second: int = 0, **fields: object) -> SpanRecord:
    """A span of ``trace_id`` as a piecemeal (OTLP-like) arrival would carry it."""
    trace = valid(trace_id, spans=[{"id": span_id, "name": f"s-{span_id}", **fields}])
    record = trace.spans[0]
    start = 1_795_262_400_000_000 + second * 1_000_000  # 2026-11-21T12:00:00Z + second
    return SpanRecord(
        trace_id=trace_id,
        id=span_id,
        name=record.name,
        status=record.status,
        start_us=start,
        tokens=record.tokens,
        body=record.body,
    )


async def test_add_is_idempotent_by_id(any_store: TraceStore) -> None:
    """A re-sent id is reported as not new and stored once, also within one batch."""
    assert await any_store.add([valid("a"), valid("b")]) == [True, True]
    assert await any_store.add([valid("a"), valid("c"), valid("c")]) == [False, True, False]
    page = await any_store.recent(ListQuery(limit=10))
    assert page.total == 3


async def test_recent_is_newest_first_with_filters_and_paging(any_store: TraceStore) -> None:
    """Newest startTime first, exact name and status filters, total counts every match."""
    await any_store.add(
        [
            valid(f"t{i}", "even" if i % 2 == 0 else "odd", i, status="error" if i % 3 else "ok")
            for i in range(10)
        ]
    )
    page = await any_store.recent(ListQuery(limit=3))
    assert ids(page.items) == ["t9", "t8", "t7"]
    assert page.total == 10
    odd = await any_store.recent(ListQuery(limit=3, offset=1, name="odd"))
    assert ids(odd.items) == ["t7", "t5", "t3"]
    assert odd.total == 5
    assert (await any_store.recent(ListQuery(limit=3, name="od%"))).total == 0
    failed = await any_store.recent(ListQuery(limit=10, status="error"))
    assert ids(failed.items) == ["t8", "t7", "t5", "t4", "t2", "t1"]
    both = await any_store.recent(ListQuery(limit=10, status="ok", name="odd"))
    assert ids(both.items) == ["t9", "t3"]
    assert both.total == 2
    assert await any_store.names() == ["even", "odd"]


async def test_cursor_pages_through_everything_once(any_store: TraceStore) -> None:
    """Following nextCursor visits every trace once, newest first, ties broken by id;
    the last page's nextCursor is None; ``before`` walks back."""
    await any_store.add([valid(f"t{i:02d}", second=i // 3) for i in range(25)])
    seen: list[str] = []
    pages = []
    cursor = None
    while True:
        page = await any_store.recent(ListQuery(limit=7, cursor=cursor))
        pages.append(page)
        seen += ids(page.items)
        if page.next_cursor is None:
            break
        cursor = decode_cursor(page.next_cursor)
    assert seen == [f"t{i:02d}" for i in reversed(range(25))]
    assert [len(p.items) for p in pages] == [7, 7, 7, 4]
    assert pages[0].prev_cursor is None
    assert pages[1].prev_cursor is not None
    assert pages[2].prev_cursor is not None
    back = await any_store.recent(ListQuery(limit=7, before=decode_cursor(pages[2].prev_cursor)))
    assert ids(back.items) == ids(pages[1].items)
    first = await any_store.recent(ListQuery(limit=7, before=decode_cursor(pages[1].prev_cursor)))
    assert ids(first.items) == ids(pages[0].items)
    assert first.prev_cursor is None
    filtered = await any_store.recent(ListQuery(limit=2, status="error"))
    assert filtered.items == []
    assert filtered.next_cursor is None


async def test_get_returns_the_document(any_store: TraceStore) -> None:
    """``get`` returns the stored wire document; None for an unknown id."""
    trace = valid(
        "x'; DROP TABLE traces; --\x00",
        spans=[{"id": "s", "name": "one"}, {"id": "s", "name": "same id, kept"}],
    )
    await any_store.add([trace])
    assert await any_store.get(trace.id) == trace.document
    assert len(orjson.loads(trace.document)["spans"]) == 2
    assert await any_store.get("missing") is None
    (item,) = (await any_store.recent(ListQuery(limit=5))).items
    assert item == trace.summary


async def test_spans_arriving_before_their_root(any_store: TraceStore) -> None:
    """Spans of an unknown trace make it provisional (listed, readable); a re-sent span
    is stored once; the root completes the trace and keeps every span."""
    assert await any_store.add_spans([span("T", "b", 5, status="error"), span("T", "a", 3)]) == [
        True,
        True,
    ]
    assert await any_store.add_spans([span("T", "a", 3), span("T", "c", 9)]) == [False, True]
    (item,) = (await any_store.recent(ListQuery(limit=5))).items
    provisional = orjson.loads(item)
    assert provisional["name"] == "s-a"  # the earliest span stands in
    assert provisional["startTime"] == "2026-11-21T12:00:03.000000Z"
    assert provisional["status"] == "error"
    assert provisional["spanCount"] == 3
    assert (await any_store.recent(ListQuery(limit=5, status="error"))).total == 1
    assert (await any_store.recent(ListQuery(limit=5, status="ok"))).total == 0
    root = valid("T", "the root", 1, llmUsage={"promptTokens": 2, "completionTokens": 3})
    assert await any_store.add_spans([span("T", "d", 10)], roots=[root]) == [True]
    document = orjson.loads(await any_store.get("T") or b"")
    assert document["name"] == "the root"
    assert document["status"] == "ok"
    assert [s["id"] for s in document["spans"]] == ["b", "a", "c", "d"]
    (item,) = (await any_store.recent(ListQuery(limit=5))).items
    assert orjson.loads(item)["spanCount"] == 4
    assert orjson.loads(item)["totalTokens"] == 5
    assert (await any_store.recent(ListQuery(limit=5, status="error"))).total == 0
    assert (await any_store.recent(ListQuery(limit=5, status="ok"))).total == 1
    assert (await any_store.recent(ListQuery(limit=5))).total == 1
    # A complete trace is not changed by a re-sent root, nor by a whole re-send.
    assert await any_store.add_spans([], roots=[valid("T", "other")]) == []
    assert await any_store.add([valid("T", "other")]) == [False]
    assert orjson.loads(await any_store.get("T") or b"")["name"] == "the root"


async def test_a_whole_trace_completes_a_provisional_one(any_store: TraceStore) -> None:
    """``add`` of a trace whose spans came first stores it (True), with every span once."""
    await any_store.add_spans([span("W", "s1", 2)])
    whole = valid("W", "whole", 1, spans=[{"id": "s1", "name": "x"}, {"id": "s2", "name": "y"}])
    assert await any_store.add([whole]) == [True]
    document = orjson.loads(await any_store.get("W") or b"")
    assert document["name"] == "whole"
    assert [s["id"] for s in document["spans"]] == ["s1", "s2"]
    (item,) = (await any_store.recent(ListQuery(limit=5))).items
    assert orjson.loads(item)["spanCount"] == 2


async def test_sessions_are_revoked(any_store: TraceStore) -> None:
    """A revoked session id reads as revoked; others do not."""
    assert not await any_store.session_revoked("s1")
    await any_store.revoke_session("s1", 2**40)
    await any_store.revoke_session("s1", 2**40)  # twice is fine
    assert await any_store.session_revoked("s1")
    assert not await any_store.session_revoked("s2")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "sub" / "traces.db")
    await store.open()
    yield store
    await store.close()


async def test_data_survives_reopening(tmp_path: Path) -> None:
    """Closing and opening the same file keeps every trace; the journal is WAL."""
    path = tmp_path / "traces.db"
    first = SqliteStore(path)
    await first.open()
    await first.add([valid("kept")])
    await first.close()
    second = SqliteStore(path)
    await second.open()
    try:
        assert await second.get("kept") is not None
    finally:
        await second.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,), (3,), (4,)]


async def test_a_0_1_database_is_migrated(tmp_path: Path) -> None:
    """A file written by 0.1 (one JSON document per trace) opens with every trace and
    span readable as before."""
    path = tmp_path / "old.db"
    new = valid("old", spans=[{"id": "s", "name": "a"}, {"id": "s", "name": "b"}])
    summary = new.summary
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE traces (id TEXT PRIMARY KEY, name TEXT NOT NULL, start_us INTEGER "
            "NOT NULL, status TEXT NOT NULL, total_tokens INTEGER NOT NULL, span_count "
            "INTEGER NOT NULL, summary BLOB NOT NULL, document BLOB NOT NULL)"
        )
        conn.execute("CREATE INDEX traces_by_start ON traces (start_us DESC, id DESC)")
        conn.execute(
            "INSERT INTO traces VALUES (?, ?, ?, ?, 0, 2, ?, ?)",
            (new.id, new.name, new.start_us, new.status, summary, new.document),
        )
    store = SqliteStore(path)
    await store.open()
    try:
        assert orjson.loads(await store.get("old") or b"") == orjson.loads(new.document)
        page = await store.recent(ListQuery(limit=5))
        assert [orjson.loads(i) for i in page.items] == [orjson.loads(summary)]
        assert page.total == 1
    finally:
        await store.close()


async def test_sql_runs_on_the_store_thread(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every query runs on the store's own thread, never on the event loop's."""
    seen: list[str] = []
    original = SqliteStore._call

    def spy(self: SqliteStore, func, args):
        seen.append(threading.current_thread().name)
        return original(self, func, args)

    monkeypatch.setattr(SqliteStore, "_call", spy)
    await store.add([valid("a")])
    await store.recent(ListQuery(limit=1))
    await store.get("a")
    await store.ping()
    assert len(seen) == 4
    assert all(name.startswith("tracing-collector-db") for name in seen)
    assert threading.current_thread().name not in seen


async def test_closed_store_raises(tmp_path: Path) -> None:
    """A closed store raises StoreError rather than touching a closed connection."""
    store = SqliteStore(tmp_path / "x.db")
    await store.open()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError):
        await store.ping()


async def test_unusable_file_is_a_store_error(tmp_path: Path) -> None:
    """A file that is not a SQLite database fails ``open`` with StoreError."""
    path = tmp_path / "not.db"
    path.write_bytes(b"this is not sqlite" * 100)
    store = SqliteStore(path)
    with pytest.raises(StoreError):
        await store.open()
