"""The SQLite schema, its version, and the migration of a 0.1 database.

``migrate(conn)`` runs at open inside ``BEGIN IMMEDIATE``, SQLite's write lock, so two
processes opening one file at once migrate it once. Version 1 is 0.1's single
``traces`` table (one JSON document per trace, no version table); version 2 keeps each
span as its own row so that traces can be assembled from spans arriving piecemeal;
version 3 adds ``traces.root_span`` and ``traces.otlp_trace``, the OTLP root span's id
and hex trace id, and version 4 ``spans.otlp_id`` and ``spans.otlp_parent``, a span's
hex OTLP id and the hex id of a parent not found yet (see ``_otlp_links``).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import orjson

from ._records import MAX_TOKENS, whole_trace_keys

__all__ = ["VERSION", "migrate"]

VERSION = 4

_V2 = (
    """CREATE TABLE traces (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        start_us     INTEGER NOT NULL,
        status       TEXT NOT NULL,
        complete     INTEGER NOT NULL,
        usage_tokens INTEGER,
        span_tokens  INTEGER NOT NULL DEFAULT 0,
        span_count   INTEGER NOT NULL DEFAULT 0,
        item         BLOB,
        head         BLOB
    )""",
    "CREATE INDEX traces_by_start ON traces (start_us DESC, id DESC)",
    "CREATE INDEX traces_by_name ON traces (name, start_us DESC, id DESC)",
    "CREATE INDEX traces_by_status ON traces (status, start_us DESC, id DESC)",
    """CREATE TABLE spans (
        seq      INTEGER PRIMARY KEY,
        trace_id TEXT NOT NULL,
        id       TEXT NOT NULL,
        body     BLOB NOT NULL,
        UNIQUE (trace_id, id)
    )""",
    "CREATE INDEX spans_by_trace ON spans (trace_id, seq)",
    "CREATE TABLE revoked_sessions (id TEXT PRIMARY KEY, expires INTEGER NOT NULL)",
    # Traces per status, kept by triggers: an exact total without counting every row.
    "CREATE TABLE trace_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    "INSERT INTO trace_counts VALUES ('ok', 0), ('error', 0)",
    """CREATE TRIGGER traces_counted AFTER INSERT ON traces BEGIN
        UPDATE trace_counts SET n = n + 1 WHERE status = NEW.status;
    END""",
    """CREATE TRIGGER traces_recounted AFTER UPDATE OF status ON traces
    WHEN OLD.status IS NOT NEW.status BEGIN
        UPDATE trace_counts SET n = n - 1 WHERE status = OLD.status;
        UPDATE trace_counts SET n = n + 1 WHERE status = NEW.status;
    END""",
    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
)
_V3 = (
    "ALTER TABLE traces ADD COLUMN root_span TEXT",
    "ALTER TABLE traces ADD COLUMN otlp_trace TEXT",
    "CREATE INDEX traces_by_otlp_trace ON traces (otlp_trace) WHERE otlp_trace IS NOT NULL",
)
_V4 = (
    "ALTER TABLE spans ADD COLUMN otlp_id TEXT",
    "ALTER TABLE spans ADD COLUMN otlp_parent TEXT",
    "CREATE INDEX spans_by_otlp_id ON spans (trace_id, otlp_id) WHERE otlp_id IS NOT NULL",
    "CREATE INDEX spans_by_otlp_parent ON spans (trace_id, otlp_parent) "
    "WHERE otlp_parent IS NOT NULL",
)
_STEPS = {3: _V3, 4: _V4}  # version -> what brings the one before to it


class SchemaError(sqlite3.DatabaseError):
    """The file holds a schema this collector cannot use."""


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(row[0]) for row in rows}


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the open database to ``VERSION`` in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = _tables(conn)
        found = 0
        if "schema_version" in tables:
            (found,) = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            if found is not None and found > VERSION:
                raise SchemaError(
                    f"the database has schema version {found}; this collector knows "
                    f"up to {VERSION}: use a newer collector"
                )
        else:
            _create_v2(conn, v1="traces" in tables)
            found = 2
        for version in range((found or 0) + 1, VERSION + 1):
            if version not in _STEPS:
                continue
            for statement in _STEPS[version]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?)",
                (version, datetime.now(UTC).isoformat()),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _create_v2(conn: sqlite3.Connection, *, v1: bool) -> None:
    """Version 2, from nothing or from 0.1's table (version 1)."""
    if v1:
        conn.execute("ALTER TABLE traces RENAME TO traces_v1")
        for index in ("traces_by_start", "traces_by_name"):
            conn.execute(f"DROP INDEX IF EXISTS {index}")
    for statement in _V2:
        conn.execute(statement)
    if v1:
        _copy_v1(conn)
        conn.execute("DROP TABLE traces_v1")
    conn.execute("INSERT INTO schema_version VALUES (2, ?)", (datetime.now(UTC).isoformat(),))


def _tokens(usage: Any) -> int:
    if not isinstance(usage, dict):
        return 0
    return int(usage.get("promptTokens") or 0) + int(usage.get("completionTokens") or 0)


def _copy_v1(conn: sqlite3.Connection) -> None:
    """Split each 0.1 document into a trace row and its span rows."""
    rows = conn.execute("SELECT id, name, start_us, status, summary, document FROM traces_v1")
    for trace_id, name, start_us, status, summary, document in rows.fetchall():
        doc = orjson.loads(document)
        spans = doc.pop("spans", None) or []
        item = orjson.loads(summary)
        item.pop("totalTokens", None)
        item.pop("spanCount", None)
        usage = doc.get("llmUsage")
        span_tokens = min(sum(_tokens(s.get("llmUsage")) for s in spans), MAX_TOKENS)
        conn.execute(
            "INSERT INTO traces VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
            (
                trace_id,
                name,
                start_us,
                status,
                _tokens(usage) if isinstance(usage, dict) else None,
                span_tokens,
                len(spans),
                orjson.dumps(item),
                orjson.dumps(doc),
            ),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO spans (trace_id, id, body) VALUES (?, ?, ?)",
            [
                (trace_id, key, orjson.dumps(span))
                for key, span in zip(
                    whole_trace_keys([str(s.get("id")) for s in spans]), spans, strict=True
                )
            ],
        )
