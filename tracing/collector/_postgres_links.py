"""The PostgreSQL store's half of ``_otlp_links``: OTLP spans relinked across requests.

Two requests carrying spans of one OTLP trace may be written at the same time by two
connections (or two collector processes). Under READ COMMITTED neither would see the
other's uncommitted rows: a root and its first spans would miss each other (the spans
keeping the root's hex id, or staying a second trace under the hex trace id). So every
OTLP write first takes a transaction-scoped advisory lock per hex OTLP trace id it
touches (``lock_traces``, in sorted order): writes of one trace run one after the other,
and each sees what the one before committed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import asyncpg

from ._otlp_links import (
    adopt,
    adoptions,
    body_tokens,
    lock_keys,
    new_parents,
    relink,
    reparented,
    unlinked,
    waiting,
)
from ._postgres_schema import (
    CHILDREN,
    LINKED,
    LOCK_TRACES,
    MOVE,
    MOVED_CHILDREN,
    PARENTS,
)
from ._records import MAX_TOKENS, SpanRecord, TraceRecord

__all__ = ["adopt_children", "linked", "lock_traces", "parents_found", "set_roots"]

_UPDATE_BODY = "UPDATE spans SET body = $3, otlp_parent = NULL WHERE trace_id = $1 AND id = $2"


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _s(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "surrogatepass")


def _ob(text: str | None) -> bytes | None:
    return None if text is None else _b(text)


async def lock_traces(
    conn: asyncpg.Connection, roots: Sequence[TraceRecord], spans: Sequence[SpanRecord]
) -> None:
    """Wait for, and hold until commit, the lock of each OTLP trace this write touches."""
    keys = lock_keys(roots, spans)
    if keys:
        await conn.execute(LOCK_TRACES, keys)


async def linked(conn: asyncpg.Connection, spans: Sequence[SpanRecord]) -> list[SpanRecord]:
    """``spans`` in the trace their OTLP trace id stands for, links to its root unlinked,
    and links to parents stored in other requests resolved."""
    if not spans:
        return []
    rows = await conn.fetch(LINKED, sorted({_b(s.trace_id) for s in spans}))
    found = [(str(_s(r[0])), _s(r[1]), str(_s(r[2]))) for r in rows if r[2] is not None]
    return await parents_found(conn, relink(spans, found))


async def parents_found(conn: asyncpg.Connection, spans: Sequence[SpanRecord]) -> list[SpanRecord]:
    """``spans`` linked to the stored ids of their parents already stored (``adopt``)."""
    wanted = waiting(spans)
    if not wanted:
        return list(spans)
    rows = await conn.fetch(PARENTS, [_b(t) for t, _ in wanted], [_b(p) for _, p in wanted])
    return adopt(spans, {(str(_s(r[0])), str(_s(r[1]))): str(_s(r[2])) for r in rows})


async def adopt_children(conn: asyncpg.Connection, spans: Sequence[SpanRecord]) -> None:
    """Link the stored spans waiting for one of ``spans`` (stored now) to its id."""
    parents = new_parents(spans)
    if not parents:
        return
    keys = sorted(parents)
    rows = await conn.fetch(CHILDREN, [_b(t) for t, _ in keys], [_b(o) for _, o in keys])
    found = [((bytes(r[0]), bytes(r[1])), str(_s(r[0])), str(_s(r[2])), r[3]) for r in rows]
    changed = adoptions(found, parents)
    if changed:
        await conn.executemany(_UPDATE_BODY, [(t, i, body) for (t, i), body in changed])


async def set_roots(conn: asyncpg.Connection, roots: Sequence[TraceRecord]) -> Counter[str]:
    """Record the OTLP roots stored now, move in the spans stored under their hex trace
    id, and make the spans that name them as parent top-level. Returns the change to the
    trace counts (a provisional trace moved into its root's is gone)."""
    delta: Counter[str] = Counter()
    for trace in sorted((t for t in roots if t.root_span is not None), key=lambda t: _b(t.id)):
        root_span = str(trace.root_span)
        trace_id = _b(trace.id)
        await conn.execute(
            "UPDATE traces SET root_span = $2, otlp_trace = $3 WHERE id = $1",
            trace_id,
            _b(root_span),
            _ob(trace.otlp_trace),
        )
        if trace.otlp_trace is not None:
            status = await _move(conn, _b(trace.otlp_trace), trace_id)
            if status is not None:
                delta[status] -= 1
                await _adopt_moved(conn, trace_id)
        rows = await conn.fetch("SELECT id, body FROM spans WHERE trace_id = $1", trace_id)
        changed = [(trace_id, r[0], body) for r in rows if (body := unlinked(r[1], root_span))]
        if changed:
            await conn.executemany(_UPDATE_BODY, changed)
    return delta


async def _adopt_moved(conn: asyncpg.Connection, trace_id: bytes) -> None:
    """Link the spans of ``trace_id`` waiting for a parent that is now in it (spans
    stored before their root under the hex trace id, moved in with it)."""
    rows = await conn.fetch(MOVED_CHILDREN, trace_id)
    changed = [
        (trace_id, r[1], reparented(r[3], str(_s(r[2])), str(_s(r[4]))) or r[3]) for r in rows
    ]
    if changed:
        await conn.executemany(_UPDATE_BODY, changed)


async def _move(conn: asyncpg.Connection, source: bytes, target: bytes) -> str | None:
    """The spans of the provisional trace ``source`` join ``target``; ``source`` goes.
    Returns its status, None when there was no such trace."""
    row = await conn.fetchrow(
        "SELECT status, span_tokens FROM traces WHERE id = $1 AND NOT complete FOR UPDATE",
        source,
    )
    if row is None:
        return None
    count = await conn.fetchval(MOVE, source, target)
    left = await conn.fetch("DELETE FROM spans WHERE trace_id = $1 RETURNING body", source)
    tokens = max(int(row["span_tokens"]) - sum(body_tokens(r[0]) for r in left), 0)
    await conn.execute("DELETE FROM traces WHERE id = $1", source)
    await conn.execute(
        f"UPDATE traces SET span_count = span_count + $2, span_tokens = CASE WHEN span_tokens"
        f" > {MAX_TOKENS} - $3 THEN {MAX_TOKENS} ELSE span_tokens + $3 END WHERE id = $1",
        target,
        count,
        tokens,
    )
    return str(row["status"])
