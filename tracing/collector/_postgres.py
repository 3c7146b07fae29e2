"""The PostgreSQL store (``--db postgresql://...``): asyncpg with a connection pool.

Several collector processes may share one database. Each batch is one transaction of
three statements over arrays (``unnest``), so a batch costs the same few round trips
whatever its size; ``ON CONFLICT`` makes every write idempotent across processes, and
the rows of a batch are locked in id order so that concurrent batches rarely deadlock
(when PostgreSQL still detects one, the batch is retried). The schema is created and
migrated at open under an advisory lock, so replicas may start together.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import attrs

from ._paging import page_of
from ._postgres_links import adopt_children, linked, lock_traces, parents_found, set_roots
from ._postgres_schema import (
    ADD_COUNTS,
    COMPLETE,
    COUNT,
    ENSURE,
    LOCK_ID,
    MIGRATIONS,
    ROOTS,
    SHARDS,
    SPANS,
)
from ._records import (
    SpanRecord,
    TraceRecord,
    assemble,
    provisional_head,
    span_tokens,
    tally,
    whole_trace_keys,
)
from ._storage import ListQuery, Page, StoreBase, StoreError, StoreFunctions

__all__ = ["PostgresStore"]

T = TypeVar("T")

POOL_SIZE = 10
_CONNECT_TIMEOUT = 5.0
_COMMAND_TIMEOUT = 30.0
_RETRIES = 5
_LIST_COLUMNS = "id, start_us, item, name, status, usage_tokens, span_tokens, span_count"
# What a database that went away (or never came) raises through asyncpg.
_DOWN = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _s(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def redact(url: str) -> str:
    """``url`` without its password, for the log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[2]}"))


class PostgresStore(StoreBase):
    """The collector's PostgreSQL database at ``url`` (a ``TraceStore``)."""

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    def _is_open(self) -> bool:
        return self._pool is not None

    @property
    def description(self) -> str:
        return redact(self.url)

    async def open(self) -> None:
        """Connect the pool and migrate the schema under an advisory lock.

        Raises:
            StoreError: the database cannot be reached, or its schema is newer.
        """
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self.url,
                min_size=0,
                max_size=self.pool_size,
                timeout=_CONNECT_TIMEOUT,
                command_timeout=_COMMAND_TIMEOUT,
            )
        except (*_DOWN, ValueError) as exc:
            raise StoreError(f"cannot connect to {self.description}: {exc}") from exc
        self._pool = pool
        try:
            await self._call(_migrate)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), 10)
        except (TimeoutError, *_DOWN):
            pool.terminate()

    async def _on_db(self, func: Callable[..., Any], *args: Any) -> Any:
        return await self._call(func, *args)

    async def names(self, limit: int = 200) -> list[str]:
        rows = await self._call(
            _fetch, "SELECT DISTINCT name FROM traces ORDER BY name LIMIT $1", limit
        )
        return [_s(row[0]) for row in rows]

    async def ping(self) -> None:
        await self._call(_fetch, "SELECT 1")

    async def revoke_session(self, session_id: str, expires: int) -> None:
        await self._call(_revoke, session_id, expires)

    async def session_revoked(self, session_id: str) -> bool:
        sql = "SELECT 1 FROM revoked_sessions WHERE id = $1"
        return bool(await self._call(_fetch, sql, session_id))

    async def _call(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``func(connection, *args)``, retrying a deadlock; errors as StoreError."""
        if self._pool is None:
            raise StoreError("the store is closed")
        for attempt in range(_RETRIES):
            try:
                async with self._pool.acquire(timeout=_CONNECT_TIMEOUT) as conn:
                    return await func(conn, *args)
            except _RETRYABLE as exc:
                if attempt == _RETRIES - 1:
                    raise StoreError(f"{type(exc).__name__}: {exc}") from exc
            except _DOWN as exc:
                raise StoreError(f"{type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover


async def _fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[Any]:
    return list(await conn.fetch(sql, *args))


async def _migrate(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        # Transaction-scoped: released at commit, and by the server if this process dies.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        found = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        if found > len(MIGRATIONS):
            raise StoreError(
                f"the database has schema version {found}; this collector knows up to "
                f"{len(MIGRATIONS)}: use a newer collector"
            )
        for version in range(found + 1, len(MIGRATIONS) + 1):
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)


async def _write(
    conn: asyncpg.Connection,
    roots: Sequence[TraceRecord],
    spans: Sequence[SpanRecord],
    whole: bool,
) -> tuple[list[bool], list[bool]]:
    """One transaction: new roots, completed roots, then spans (and the counters of the
    traces that got spans other than with their new whole trace). Rows are written in
    id order, so that concurrent batches lock them in the same order."""
    first: dict[str, int] = {}  # the first occurrence of each id
    for index, trace in enumerate(roots):
        first.setdefault(trace.id, index)
    ordered = sorted((roots[i] for i in first.values()), key=lambda t: _b(t.id))
    async with conn.transaction():
        if not whole:
            await lock_traces(conn, ordered, spans)
        rows = await conn.fetch(ROOTS, *_root_columns(ordered, whole))
        fresh = {_s(row[0]) for row in rows}
        delta = Counter(t.status for t in ordered if t.id in fresh)
        rest = [t for t in ordered if t.id not in fresh]
        done = set()
        if rest:
            for trace_id, before, after in await conn.fetch(COMPLETE, *_complete_columns(rest)):
                done.add(_s(trace_id))
                _moved(delta, before, after)
        root_flags = [
            first[t.id] == i and (t.id in fresh or t.id in done) for i, t in enumerate(roots)
        ]
        direct: list[tuple[str, SpanRecord]] = []  # spans of a new whole trace
        counted: list[tuple[str, SpanRecord]] = []  # spans that update their trace's counts
        for trace, new in zip(roots, root_flags, strict=True):
            ids = [s.id for s in trace.spans]
            keyed = zip(whole_trace_keys(ids) if whole else ids, trace.spans, strict=True)
            if whole and new and trace.id in fresh:
                direct += keyed
            elif new or not whole:
                counted += keyed
        first_loose = len(counted)
        if not whole:  # OTLP: links to parents stored in other requests
            counted = [(s.id, s) for s in await parents_found(conn, [s for _, s in counted])]
        counted += [(span.id, span) for span in await linked(conn, spans)]
        span_flags = await _insert_spans(conn, direct, counted, delta)
        if not whole:
            fresh_spans = [s for (_, s), new in zip(counted, span_flags, strict=True) if new]
            await adopt_children(conn, fresh_spans)
        new_roots = [t for t, new in zip(roots, root_flags, strict=True) if new]
        delta.update(await set_roots(conn, new_roots))
        changes = [(status, n) for status, n in sorted(delta.items()) if n]
        if changes:  # last: the counter rows are the most shared, so held the shortest
            shard = random.randrange(SHARDS)
            await conn.execute(ADD_COUNTS, *map(list, zip(*changes, strict=True)), shard)
    return root_flags, span_flags[first_loose:]


def _moved(delta: Counter[str], before: str, after: str) -> None:
    """A trace's status changed from ``before`` to ``after`` (perhaps the same)."""
    delta[before] -= 1
    delta[after] += 1


def _root_columns(traces: Sequence[TraceRecord], whole: bool) -> list[list[Any]]:
    return [
        [_b(t.id) for t in traces],
        [_b(t.name) for t in traces],
        [t.start_us for t in traces],
        [t.status for t in traces],
        [t.usage_tokens for t in traces],
        [span_tokens(t) if whole else 0 for t in traces],
        [t.span_count if whole else 0 for t in traces],
        [t.item for t in traces],
        [t.head for t in traces],
    ]


def _complete_columns(traces: Sequence[TraceRecord]) -> list[list[Any]]:
    columns = _root_columns(traces, False)
    return columns[:5] + columns[7:]


async def _insert_spans(
    conn: asyncpg.Connection,
    direct: list[tuple[str, SpanRecord]],
    counted: list[tuple[str, SpanRecord]],
    delta: Counter[str],
) -> list[bool]:
    """Insert every span; return, per ``counted`` span, whether it was new, and add the
    new ones to their traces' counters (``delta``: traces made or changed, by status)."""
    keyed = direct + counted
    if not keyed:
        return []
    rows = await conn.fetch(
        SPANS,
        [_b(s.trace_id) for _, s in keyed],
        [_b(key) for key, _ in keyed],
        [s.body for _, s in keyed],
        [None if s.otlp_id is None else _b(s.otlp_id) for _, s in keyed],
        [None if s.otlp_parent is None else _b(s.otlp_parent) for _, s in keyed],
    )
    if not counted:
        return []
    fresh = {(bytes(row[0]), bytes(row[1])) for row in rows}
    flags: list[bool] = []
    for key, span in counted:
        pair = (_b(span.trace_id), _b(key))
        flags.append(pair in fresh)
        fresh.discard(pair)  # a repeat later in the batch is not new
    new = (span for (_, span), stored in zip(counted, flags, strict=True) if stored)
    ordered = sorted(tally(new, time.time_ns() // 1000).items(), key=lambda i: _b(i[0]))
    if ordered:
        columns = [
            [_b(trace_id) for trace_id, _ in ordered],
            [_b(entry[0]) for _, entry in ordered],
            *([entry[i] for _, entry in ordered] for i in range(1, 5)),
        ]
        delta.update(row[0] for row in await conn.fetch(ENSURE, *columns[:4]))
        for before, after in await conn.fetch(COUNT, *columns):
            _moved(delta, before, after)
    return flags


async def _select_page(conn: asyncpg.Connection, query: ListQuery) -> Page:
    where: list[str] = []
    params: list[Any] = []
    if query.name is not None:
        params.append(_b(query.name))
        where.append(f"name = ${len(params)}")
    if query.status is not None:
        params.append(query.status)
        where.append(f"status = ${len(params)}")
    sql = " WHERE " + " AND ".join(where) if where else ""
    if query.name is None:  # kept by every write, rather than counting every row
        counted = "SELECT coalesce(sum(n), 0) FROM trace_counts" + sql
    else:
        counted = "SELECT count(*) FROM traces" + sql
    total = await conn.fetchval(counted, *params)
    edge, order = query.cursor or query.before, "DESC" if query.before is None else "ASC"
    if edge is not None:
        params += [edge.start_us, _b(edge.id)]
        op = "<" if order == "DESC" else ">"
        where.append(f"(start_us, id) {op} (${len(params) - 1}, ${len(params)})")
    sql = " WHERE " + " AND ".join(where) if where else ""
    params += [query.limit + 1, query.offset]
    rows = await conn.fetch(
        f"SELECT {_LIST_COLUMNS} FROM traces{sql} ORDER BY start_us {order}, id {order} "
        f"LIMIT ${len(params) - 1} OFFSET ${len(params)}",
        *params,
    )
    if query.before is not None and len(rows) <= query.limit:
        return await _select_page(conn, attrs.evolve(query, before=None, offset=0))
    decoded = [(_s(r[0]), r[1], r[2], _s(r[3]), *tuple(r)[4:]) for r in rows]
    return page_of(query, int(total), decoded)


async def _select_document(conn: asyncpg.Connection, trace_id: str) -> bytes | None:
    key = _b(trace_id)
    async with _snapshot(conn):
        row = await conn.fetchrow(
            "SELECT head, name, start_us, status FROM traces WHERE id = $1", key
        )
        if row is None:
            return None
        spans = await conn.fetch("SELECT body FROM spans WHERE trace_id = $1 ORDER BY seq", key)
    head = row[0]
    if head is None:
        head = provisional_head(trace_id, _s(row[1]), row[2], row[3])
    return assemble(bytes(head), [bytes(span[0]) for span in spans])


@contextlib.asynccontextmanager
async def _snapshot(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """The trace row and its spans as of one moment (a concurrent batch adds both)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        yield


async def _revoke(conn: asyncpg.Connection, session_id: str, expires: int) -> None:
    async with conn.transaction():
        await conn.execute("DELETE FROM revoked_sessions WHERE expires < $1", int(time.time()))
        await conn.execute(
            "INSERT INTO revoked_sessions VALUES ($1, $2) ON CONFLICT DO NOTHING",
            session_id,
            expires,
        )


PostgresStore.functions = StoreFunctions(_write, _select_page, _select_document)
