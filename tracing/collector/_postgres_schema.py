"""The PostgreSQL schema, numbered migrations, and the SQL the store runs.

Ids and names are ``bytea`` (their UTF-8 bytes), not ``text``: PostgreSQL's text cannot
hold NUL, which JSON strings may, and bytes sort by code point, so ties in the list
and the names filter order exactly as on SQLite, whatever the database's collation.
"""

from __future__ import annotations

from ._records import MAX_TOKENS

__all__ = ["COUNT", "LOCK_ID", "MIGRATIONS", "ROOTS", "SPANS"]

# pg_advisory_xact_lock key for migrations: b"tracing" as an integer.
LOCK_ID = int.from_bytes(b"tracing", "big")

# Version n is MIGRATIONS[n - 1]; each runs in the one migration transaction.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE traces (
            id           bytea PRIMARY KEY,
            name         bytea NOT NULL,
            start_us     bigint NOT NULL,
            status       text NOT NULL,
            complete     boolean NOT NULL,
            usage_tokens bigint,
            span_tokens  bigint NOT NULL DEFAULT 0,
            span_count   bigint NOT NULL DEFAULT 0,
            item         bytea,
            head         bytea
        )""",
        "CREATE INDEX traces_by_start ON traces (start_us DESC, id DESC)",
        "CREATE INDEX traces_by_name ON traces (name, start_us DESC, id DESC)",
        "CREATE INDEX traces_by_status ON traces (status, start_us DESC, id DESC)",
        """CREATE TABLE spans (
            trace_id bytea NOT NULL,
            id       bytea NOT NULL,
            seq      bigint GENERATED ALWAYS AS IDENTITY,
            body     bytea NOT NULL,
            PRIMARY KEY (trace_id, id)
        )""",
        "CREATE INDEX spans_by_trace ON spans (trace_id, seq)",
        "CREATE TABLE revoked_sessions (id text PRIMARY KEY, expires bigint NOT NULL)",
    ),
)

# Whole traces or roots: a new id is inserted complete; a provisional row is completed
# (its counters kept); a complete row is left alone. RETURNING: the ids stored now.
ROOTS = """
INSERT INTO traces AS t (id, name, start_us, status, complete, usage_tokens, item, head)
SELECT u.id, u.name, u.start_us, u.status, true, u.usage_tokens, u.item, u.head
FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::text[], $5::bigint[],
            $6::bytea[], $7::bytea[])
     AS u(id, name, start_us, status, usage_tokens, item, head)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name, start_us = excluded.start_us, status = excluded.status,
    complete = true, usage_tokens = excluded.usage_tokens, item = excluded.item,
    head = excluded.head
WHERE NOT t.complete
RETURNING t.id
"""

# Spans, each once by (trace id, span id). RETURNING: those stored now (their index).
SPANS = """
INSERT INTO spans (trace_id, id, body)
SELECT u.trace_id, u.id, u.body
FROM unnest($1::bytea[], $2::bytea[], $3::bytea[]) WITH ORDINALITY AS u(trace_id, id, body, n)
ORDER BY u.n
ON CONFLICT DO NOTHING
RETURNING trace_id, id
"""

# New spans count towards their trace; a span of an unknown trace makes it provisional.
COUNT = f"""
INSERT INTO traces AS t (id, name, start_us, status, complete, span_tokens, span_count)
SELECT u.id, u.name, u.start_us, u.status, false, u.tokens, u.count
FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[])
     AS u(id, name, start_us, status, tokens, count)
ON CONFLICT (id) DO UPDATE SET
    span_count = t.span_count + excluded.span_count,
    span_tokens = CASE WHEN t.span_tokens > {MAX_TOKENS} - excluded.span_tokens
        THEN {MAX_TOKENS} ELSE t.span_tokens + excluded.span_tokens END,
    name = CASE WHEN NOT t.complete AND excluded.start_us < t.start_us
        THEN excluded.name ELSE t.name END,
    start_us = CASE WHEN NOT t.complete AND excluded.start_us < t.start_us
        THEN excluded.start_us ELSE t.start_us END,
    status = CASE WHEN NOT t.complete AND excluded.status = 'error'
        THEN 'error' ELSE t.status END
"""
