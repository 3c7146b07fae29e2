"""SQLite storage (``tracing.collector._store``): idempotence, order, persistence, threads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tracing.collector._store import Store, StoreError
from tracing.collector._validate import ValidTrace, validate_trace


def valid(trace_id: str, name: str = "job", second: int = 0) -> ValidTrace:
    result = validate_trace(
        {"id": trace_id, "name": name, "startTime": f"2026-11-21T12:00:{second:02d}Z"}
    )
    assert isinstance(result, ValidTrace)
    return result


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(tmp_path / "sub" / "traces.db")
    await store.open()
    yield store
    await store.close()


async def test_add_is_idempotent_by_id(store: Store) -> None:
    """A re-sent id is reported as not new and stored once, also within one batch."""
    assert await store.add([valid("a"), valid("b")]) == [True, True]
    assert await store.add([valid("a"), valid("c"), valid("c")]) == [False, True, False]
    page = await store.recent(limit=10, offset=0)
    assert page.total == 3


async def test_recent_is_newest_first_with_filter_and_paging(store: Store) -> None:
    """Newest startTime first, exact name filter, total counts every match."""
    await store.add([valid(f"t{i}", "even" if i % 2 == 0 else "odd", i) for i in range(10)])
    page = await store.recent(limit=3, offset=0)
    assert [orjson.loads(item)["id"] for item in page.items] == ["t9", "t8", "t7"]
    assert page.total == 10
    odd = await store.recent(limit=3, offset=1, name="odd")
    assert [orjson.loads(item)["id"] for item in odd.items] == ["t7", "t5", "t3"]
    assert odd.total == 5
    assert (await store.recent(limit=3, offset=0, name="od%")).total == 0
    assert await store.names() == ["even", "odd"]


async def test_get_returns_the_document(store: Store) -> None:
    """``get`` returns the stored wire document; None for an unknown id."""
    trace = valid("x'; DROP TABLE traces; --")
    await store.add([trace])
    assert await store.get(trace.id) == trace.document
    assert await store.get("missing") is None


async def test_data_survives_reopening(tmp_path: Path) -> None:
    """Closing and opening the same file keeps every trace; the journal is WAL."""
    path = tmp_path / "traces.db"
    first = Store(path)
    await first.open()
    await first.add([valid("kept")])
    await first.close()
    second = Store(path)
    await second.open()
    try:
        assert await second.get("kept") is not None
    finally:
        await second.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_sql_runs_on_the_store_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SQL statement runs on the store's own thread, never on the event loop's.

    Seen through SQLite itself: each connection gets a trace callback, which SQLite calls
    for every statement, on the thread that runs it.
    """
    seen: list[tuple[str, str]] = []
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*args, **kwargs)
        conn.set_trace_callback(lambda sql: seen.append((threading.current_thread().name, sql)))
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    store = Store(tmp_path / "traced.db")
    await store.open()
    try:
        await store.add([valid("a")])
        await store.recent(limit=1, offset=0)
        await store.get("a")
        await store.ping()
    finally:
        await store.close()
    statements = " ".join(sql for _, sql in seen)
    for kind in ("CREATE TABLE", "INSERT INTO traces", "SELECT summary", "SELECT document"):
        assert kind in statements
    threads = {name for name, _ in seen}
    assert len(threads) == 1
    assert threads.pop().startswith("tracing-collector-db")


async def test_closed_store_raises(tmp_path: Path) -> None:
    """A closed store raises StoreError rather than touching a closed connection."""
    store = Store(tmp_path / "x.db")
    await store.open()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError):
        await store.ping()


async def test_unusable_file_is_a_store_error(tmp_path: Path) -> None:
    """A file that is not a SQLite database fails ``open`` with StoreError."""
    path = tmp_path / "not.db"
    path.write_bytes(b"this is not sqlite" * 100)
    store = Store(path)
    with pytest.raises(StoreError):
        await store.open()
