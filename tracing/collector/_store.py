"""SQLite storage: schema, queries, and the one thread every ``sqlite3`` call runs on.

The event loop never touches the database: each public coroutine hands a function to a
single-thread executor that owns the connection, so a slow disk stalls that thread, not
request handling, and writes never contend with each other. WAL lets the file be read
by other processes (``sqlite3`` on the command line) while the collector writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ._validate import ValidTrace

__all__ = ["Page", "Store", "StoreError"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS traces (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    start_us     INTEGER NOT NULL,
    status       TEXT NOT NULL,
    total_tokens INTEGER NOT NULL,
    span_count   INTEGER NOT NULL,
    summary      BLOB NOT NULL,
    document     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_by_start ON traces (start_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS traces_by_name ON traces (name, start_us DESC, id DESC);
"""
_INSERT = """
INSERT INTO traces (id, name, start_us, status, total_tokens, span_count, summary, document)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
"""


class StoreError(Exception):
    """The database could not do what was asked (disk full, file unreadable, closed)."""


@attrs.frozen
class Page:
    """One page of the trace list: ``items`` are the stored summaries, newest first."""

    total: int
    items: list[bytes]


class Store:
    """The collector's SQLite database at ``path``, used from the event loop.

    Call ``await open()`` first and ``await close()`` last; in between, every method
    runs its SQL on the store's own thread.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else "closed"
        return f"<Store {str(self.path)!r} {state}>"

    async def open(self) -> None:
        """Create the file, the schema and the writer thread.

        Raises:
            StoreError: the file cannot be opened as a SQLite database.
        """
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tracing-collector-db")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise StoreError(f"cannot open {str(self.path)!r}: {exc}") from exc
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Finish queued work, close the connection and stop the thread. Idempotent."""
        executor = self._executor
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            self._executor = None
            executor.shutdown(wait=True)

    async def add(self, traces: Sequence[ValidTrace]) -> list[bool]:
        """Store a batch in one transaction; True per trace newly stored, False if its id
        was already there (a re-send: acknowledged, not stored twice)."""
        return await self._run(_insert, traces)

    async def recent(self, *, limit: int, offset: int, name: str | None = None) -> Page:
        """Summaries newest ``startTime`` first (ties by id), with the matching total."""
        return await self._run(_select_page, limit, offset, name)

    async def get(self, trace_id: str) -> bytes | None:
        """The stored wire document of one trace, spans included; None if unknown."""
        return await self._run(_select_document, trace_id)

    async def names(self, limit: int = 200) -> list[str]:
        """Distinct trace names, alphabetically, for the viewer's filter."""
        return await self._run(_select_names, limit)

    async def ping(self) -> None:
        """Raise StoreError unless the database answers a query."""
        await self._run(_select_one)

    # The thread side -------------------------------------------------------------------

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, func, args)
        except sqlite3.Error as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc

    def _call(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the store is closed")
        return func(self._conn, *args)

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _insert(conn: sqlite3.Connection, traces: Sequence[ValidTrace]) -> list[bool]:
    added: list[bool] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for t in traces:
            cursor = conn.execute(
                _INSERT,
                (
                    t.id,
                    t.name,
                    t.start_us,
                    t.status,
                    t.total_tokens,
                    t.span_count,
                    t.summary,
                    t.document,
                ),
            )
            added.append(cursor.rowcount == 1)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return added


def _select_page(conn: sqlite3.Connection, limit: int, offset: int, name: str | None) -> Page:
    where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
    (total,) = conn.execute(f"SELECT count(*) FROM traces {where}", params).fetchone()
    rows = conn.execute(
        f"SELECT summary FROM traces {where} ORDER BY start_us DESC, id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    return Page(total=int(total), items=[bytes(row[0]) for row in rows])


def _select_document(conn: sqlite3.Connection, trace_id: str) -> bytes | None:
    row = conn.execute("SELECT document FROM traces WHERE id = ?", (trace_id,)).fetchone()
    return None if row is None else bytes(row[0])


def _select_names(conn: sqlite3.Connection, limit: int) -> list[str]:
    rows = conn.execute("SELECT DISTINCT name FROM traces ORDER BY name LIMIT ?", (limit,))
    return [str(row[0]) for row in rows]


def _select_one(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()
