"""The PostgreSQL store's half of ``_otlp_links``: OTLP spans relinked across requests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import asyncpg

from ._otlp_links import body_tokens, relink, unlinked
from ._postgres_schema import LINKED, MOVE
from ._records import MAX_TOKENS, SpanRecord, TraceRecord

__all__ = ["linked", "set_roots"]


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _s(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "surrogatepass")


async def linked(conn: asyncpg.Connection, spans: Sequence[SpanRecord]) -> list[SpanRecord]:
    """``spans`` in the trace their OTLP trace id stands for, links to its root unlinked
    (the traces' rows stay locked until commit)."""
    if not spans:
        return []
    rows = await conn.fetch(LINKED, sorted({_b(s.trace_id) for s in spans}))
    found = [(str(_s(r[0])), _s(r[1]), str(_s(r[2]))) for r in rows if r[2] is not None]
    return relink(spans, found)


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
            None if trace.otlp_trace is None else _b(trace.otlp_trace),
        )
        if trace.otlp_trace is not None:
            status = await _move(conn, _b(trace.otlp_trace), trace_id)
            if status is not None:
                delta[status] -= 1
        rows = await conn.fetch("SELECT id, body FROM spans WHERE trace_id = $1", trace_id)
        changed = [(trace_id, r[0], body) for r in rows if (body := unlinked(r[1], root_span))]
        if changed:
            await conn.executemany(
                "UPDATE spans SET body = $3 WHERE trace_id = $1 AND id = $2", changed
            )
    return delta


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
