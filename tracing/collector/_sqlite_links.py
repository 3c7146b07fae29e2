"""The SQLite store's half of ``_otlp_links``: OTLP spans relinked across requests.

Every function runs inside the store's write transaction (``BEGIN IMMEDIATE``: one
writer at a time, so no two requests of one trace can miss each other).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ._otlp_links import (
    adopt,
    adoptions,
    body_tokens,
    new_parents,
    relink,
    reparented,
    unlinked,
    waiting,
)
from ._records import MAX_TOKENS, SpanRecord, TraceRecord

__all__ = ["adopt_children", "linked", "parents_found", "set_roots"]

_CHUNK = 400  # ids per IN (...) list, well under SQLite's limit of bound parameters


def linked(conn: sqlite3.Connection, spans: Sequence[SpanRecord]) -> list[SpanRecord]:
    """``spans`` in the trace their OTLP trace id stands for, links to its root unlinked,
    and links to parents stored in other requests resolved."""
    ids = sorted({s.trace_id for s in spans})
    found: list[tuple[str, str | None, str]] = []
    for at in range(0, len(ids), _CHUNK):
        chunk = ids[at : at + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT id, otlp_trace, root_span FROM traces WHERE root_span IS NOT NULL "
            f"AND (id IN ({marks}) OR otlp_trace IN ({marks}))",
            chunk + chunk,
        )
        found += rows.fetchall()
    return parents_found(conn, relink(spans, found))


def parents_found(conn: sqlite3.Connection, spans: Sequence[SpanRecord]) -> list[SpanRecord]:
    """``spans`` linked to the stored ids of their parents already stored (``adopt``)."""
    parents: dict[tuple[str, str], str] = {}
    for trace_id, parent in waiting(spans):
        row = conn.execute(
            "SELECT id FROM spans WHERE trace_id = ? AND otlp_id = ?", (trace_id, parent)
        ).fetchone()
        if row is not None:
            parents[trace_id, parent] = str(row[0])
    return adopt(spans, parents)


def adopt_children(conn: sqlite3.Connection, spans: Sequence[SpanRecord]) -> None:
    """Link the stored spans waiting for one of ``spans`` (stored now) to its id."""
    parents = new_parents(spans)
    for trace_id, otlp_id in parents:
        rows = conn.execute(
            "SELECT seq, trace_id, otlp_parent, body FROM spans "
            "WHERE trace_id = ? AND otlp_parent = ?",
            (trace_id, otlp_id),
        ).fetchall()
        conn.executemany(
            "UPDATE spans SET body = ?, otlp_parent = NULL WHERE seq = ?",
            [(body, seq) for seq, body in adoptions(rows, parents)],
        )


def set_roots(conn: sqlite3.Connection, roots: Sequence[TraceRecord]) -> None:
    """Record the OTLP roots stored now, move in the spans stored under their hex trace
    id, and make the spans that name them as parent top-level."""
    for trace in roots:
        if trace.root_span is None:
            continue
        conn.execute(
            "UPDATE traces SET root_span = ?, otlp_trace = ? WHERE id = ?",
            (trace.root_span, trace.otlp_trace, trace.id),
        )
        if trace.otlp_trace is not None and _move(conn, trace.otlp_trace, trace.id):
            _adopt_moved(conn, trace.id)
        rows = conn.execute("SELECT seq, body FROM spans WHERE trace_id = ?", (trace.id,))
        changed = [(body, seq) for seq, old in rows if (body := unlinked(old, trace.root_span))]
        conn.executemany("UPDATE spans SET body = ?, otlp_parent = NULL WHERE seq = ?", changed)


def _adopt_moved(conn: sqlite3.Connection, trace_id: str) -> None:
    """Link the spans of ``trace_id`` waiting for a parent that is now in it (spans
    stored before their root under the hex trace id, moved in with it)."""
    rows = conn.execute(
        "SELECT c.seq, c.otlp_parent, c.body, p.id FROM spans c JOIN spans p "
        "ON p.trace_id = c.trace_id AND p.otlp_id = c.otlp_parent WHERE c.trace_id = ?",
        (trace_id,),
    ).fetchall()
    conn.executemany(
        "UPDATE spans SET body = ?, otlp_parent = NULL WHERE seq = ?",
        [(reparented(body, parent, found) or body, seq) for seq, parent, body, found in rows],
    )


def _move(conn: sqlite3.Connection, source: str, target: str) -> bool:
    """The spans of the provisional trace ``source`` join ``target``; ``source`` goes.
    False when there was no such trace."""
    row = conn.execute(
        "SELECT status, span_count, span_tokens FROM traces WHERE id = ? AND complete = 0",
        (source,),
    ).fetchone()
    if row is None:
        return False
    status, count, tokens = row
    conn.execute("UPDATE OR IGNORE spans SET trace_id = ? WHERE trace_id = ?", (target, source))
    for (body,) in conn.execute("SELECT body FROM spans WHERE trace_id = ?", (source,)):
        count -= 1  # already stored in target: counted there
        tokens -= body_tokens(body)
    conn.execute("DELETE FROM spans WHERE trace_id = ?", (source,))
    conn.execute("DELETE FROM traces WHERE id = ?", (source,))
    conn.execute("UPDATE trace_counts SET n = n - 1 WHERE status = ?", (status,))
    conn.execute(
        f"UPDATE traces SET span_count = span_count + ?, span_tokens = CASE WHEN span_tokens > "
        f"{MAX_TOKENS} - ? THEN {MAX_TOKENS} ELSE span_tokens + ? END WHERE id = ?",
        (count, max(tokens, 0), max(tokens, 0), target),
    )
    return True
