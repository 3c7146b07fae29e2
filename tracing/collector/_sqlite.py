"""The SQLite store (the default): one file, one thread every ``sqlite3`` call runs on.

The event loop never touches the database: each coroutine hands a function to a
single-thread executor that owns the connection, so a slow disk stalls that thread, not
request handling, and writes never contend with each other. WAL lets the file be read
by other processes (``sqlite3`` on the command line) while the collector writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ._paging import page_of
from ._records import (
    MAX_TOKENS,
    SpanRecord,
    TraceRecord,
    assemble,
    provisional_head,
    span_tokens,
    tally,
    whole_trace_keys,
)
from ._sqlite_links import adopt_children, linked, parents_found, set_roots
from ._sqlite_schema import migrate
from ._storage import ListQuery, Page, StoreBase, StoreError, StoreFunctions

__all__ = ["SqliteStore"]

T = TypeVar("T")

_ROOT = """
INSERT INTO traces (id, name, start_us, status, complete, usage_tokens, span_tokens,
                    span_count, item, head)
VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
"""
# A root completes a provisional trace (made by its spans); the counters stay.
_COMPLETE = """
UPDATE traces SET name = ?, start_us = ?, status = ?, complete = 1, usage_tokens = ?,
    item = ?, head = ?
WHERE id = ? AND complete = 0
"""
# A new span counts towards its trace; a span of an unknown trace makes it provisional.
_COUNT = f"""
INSERT INTO traces (id, name, start_us, status, complete, span_tokens, span_count)
VALUES (?, ?, ?, ?, 0, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    span_count = span_count + excluded.span_count,
    span_tokens = CASE WHEN span_tokens > {MAX_TOKENS} - excluded.span_tokens
        THEN {MAX_TOKENS} ELSE span_tokens + excluded.span_tokens END,
    name = CASE WHEN complete = 0 AND excluded.start_us < start_us
        THEN excluded.name ELSE name END,
    start_us = CASE WHEN complete = 0 AND excluded.start_us < start_us
        THEN excluded.start_us ELSE start_us END,
    status = CASE WHEN complete = 0 AND excluded.status = 'error'
        THEN 'error' ELSE status END
"""
_SPAN = """
INSERT INTO spans (trace_id, id, body, otlp_id, otlp_parent) VALUES (?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
"""
_LIST_COLUMNS = "id, start_us, item, name, status, usage_tokens, span_tokens, span_count"


class SqliteStore(StoreBase):
    """The collector's SQLite database at ``path`` (a ``TraceStore``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def _is_open(self) -> bool:
        return self._conn is not None

    @property
    def description(self) -> str:
        return str(self.path)

    async def open(self) -> None:
        """Create the file, the schema and the writer thread; migrate a 0.1 file.

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
        executor = self._executor
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            self._executor = None
            executor.shutdown(wait=True)

    async def _on_db(self, func: Callable[..., Any], *args: Any) -> Any:
        return await self._run(func, *args)

    async def names(self, limit: int = 200) -> list[str]:
        return await self._run(_select_names, limit)

    async def ping(self) -> None:
        await self._run(_select_one)

    async def revoke_session(self, session_id: str, expires: int) -> None:
        await self._run(_revoke, session_id, expires)

    async def session_revoked(self, session_id: str) -> bool:
        return await self._run(_is_revoked, session_id)

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
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _now_us() -> int:
    return time.time_ns() // 1000


def _write(
    conn: sqlite3.Connection,
    roots: Sequence[TraceRecord],
    spans: Sequence[SpanRecord],
    whole: bool,
) -> tuple[list[bool], list[bool]]:
    """One transaction: roots first, then spans; new spans update their trace's counters.

    ``whole``: roots are whole traces (``add``), whose spans are skipped on a re-send.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        root_flags: list[bool] = []
        direct: list[tuple[str, SpanRecord]] = []  # spans of a new whole trace
        counted: list[tuple[str, SpanRecord]] = []  # spans that update their trace's counts
        seen: set[str] = set()
        for trace in roots:
            fresh, new = (False, False) if trace.id in seen else _root(conn, trace, whole)
            seen.add(trace.id)
            root_flags.append(new)
            ids = [s.id for s in trace.spans]
            keyed = zip(whole_trace_keys(ids) if whole else ids, trace.spans, strict=True)
            if fresh and whole:
                direct += keyed
            elif new or not whole:
                counted += keyed
        conn.executemany(_SPAN, [(s.trace_id, key, s.body, None, None) for key, s in direct])
        first_loose = len(counted)
        if not whole:  # OTLP: links to parents stored in other requests
            counted = [(span.id, span) for span in parents_found(conn, [s for _, s in counted])]
        counted += [(span.id, span) for span in linked(conn, spans)]
        flags = _insert_counted(conn, counted)
        if not whole:
            adopt_children(conn, [s for (_, s), new in zip(counted, flags, strict=True) if new])
        span_flags = flags[first_loose:]
        set_roots(conn, [t for t, new in zip(roots, root_flags, strict=True) if new])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return root_flags, span_flags


def _root(conn: sqlite3.Connection, t: TraceRecord, whole: bool) -> tuple[bool, bool]:
    """(inserted now, stored now): a new id is inserted, with its spans' counts when they
    all will be stored with it; a provisional trace is completed."""
    count, tokens = (t.span_count, span_tokens(t)) if whole else (0, 0)
    row = (t.id, t.name, t.start_us, t.status, t.usage_tokens, tokens, count, t.item, t.head)
    if conn.execute(_ROOT, row).rowcount == 1:
        return True, True
    update = (t.name, t.start_us, t.status, t.usage_tokens, t.item, t.head, t.id)
    return False, conn.execute(_COMPLETE, update).rowcount == 1


def _insert_counted(conn: sqlite3.Connection, keyed: list[tuple[str, SpanRecord]]) -> list[bool]:
    flags = [
        conn.execute(
            _SPAN, (span.trace_id, key, span.body, span.otlp_id, span.otlp_parent)
        ).rowcount
        == 1
        for key, span in keyed
    ]
    new = (span for (_, span), stored in zip(keyed, flags, strict=True) if stored)
    counts = tally(new, _now_us())
    conn.executemany(_COUNT, [(trace_id, *entry) for trace_id, entry in counts.items()])
    return flags


def _filters(query: ListQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.name is not None:
        where.append("name = ?")
        params.append(query.name)
    if query.status is not None:
        where.append("status = ?")
        params.append(query.status)
    return where, params


def _select_page(conn: sqlite3.Connection, query: ListQuery) -> Page:
    where, params = _filters(query)
    sql = " WHERE " + " AND ".join(where) if where else ""
    if query.name is None:  # kept by triggers, rather than counting every row
        counted = "SELECT coalesce(sum(n), 0) FROM trace_counts" + sql
    else:
        counted = "SELECT count(*) FROM traces" + sql
    (total,) = conn.execute(counted, params).fetchone()
    edge, order = query.cursor or query.before, "DESC" if query.before is None else "ASC"
    if edge is not None:
        where.append("(start_us, id) < (?, ?)" if order == "DESC" else "(start_us, id) > (?, ?)")
        params += [edge.start_us, edge.id]
    sql = " WHERE " + " AND ".join(where) if where else ""
    rows = conn.execute(
        f"SELECT {_LIST_COLUMNS} FROM traces{sql} "
        f"ORDER BY start_us {order}, id {order} LIMIT ? OFFSET ?",
        (*params, query.limit + 1, query.offset),
    ).fetchall()
    if query.before is not None and len(rows) <= query.limit:
        return _select_page(conn, attrs.evolve(query, before=None, offset=0))
    return page_of(query, int(total), rows)


def _select_document(conn: sqlite3.Connection, trace_id: str) -> bytes | None:
    row = conn.execute(
        "SELECT head, name, start_us, status FROM traces WHERE id = ?", (trace_id,)
    ).fetchone()
    if row is None:
        return None
    head, name, start_us, status = row
    if head is None:
        head = provisional_head(trace_id, name, start_us, status)
    spans = conn.execute(
        "SELECT body FROM spans WHERE trace_id = ? ORDER BY seq", (trace_id,)
    ).fetchall()
    return assemble(bytes(head), [bytes(span[0]) for span in spans])


def _select_names(conn: sqlite3.Connection, limit: int) -> list[str]:
    rows = conn.execute("SELECT DISTINCT name FROM traces ORDER BY name LIMIT ?", (limit,))
    return [str(row[0]) for row in rows]


def _select_one(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()


def _revoke(conn: sqlite3.Connection, session_id: str, expires: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM revoked_sessions WHERE expires < ?", (int(time.time()),))
        conn.execute(
            "INSERT INTO revoked_sessions VALUES (?, ?) ON CONFLICT DO NOTHING",
            (session_id, expires),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _is_revoked(conn: sqlite3.Connection, session_id: str) -> bool:
    row = conn.execute("SELECT 1 FROM revoked_sessions WHERE id = ?", (session_id,))
    return row.fetchone() is not None


SqliteStore.functions = StoreFunctions(_write, _select_page, _select_document)
