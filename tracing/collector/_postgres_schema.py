"""The PostgreSQL schema, numbered migrations, and the SQL the store runs.

Ids and names are ``bytea`` (their UTF-8 bytes), not ``text``: PostgreSQL's text cannot
hold NUL, which JSON strings may, and bytes sort by code point, so ties in the list
and the names filter order exactly as on SQLite, whatever the database's collation.
"""

from __future__ import annotations

from ._records import MAX_TOKENS

__all__ = [
    "ADD_COUNTS",
    "CHILDREN",
    "COMPLETE",
    "COUNT",
    "ENSURE",
    "LINKED",
    "LOCK_ID",
    "LOCK_TRACES",
    "MIGRATIONS",
    "MOVE",
    "MOVED_CHILDREN",
    "PARENTS",
    "ROOTS",
    "SHARDS",
    "SPANS",
]

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
        # The number of traces per status, kept in the transactions that change it, in
        # SHARDS rows per status so that concurrent batches rarely wait for each other:
        # an exact total without counting a million rows.
        """CREATE TABLE trace_counts (
            status text NOT NULL,
            shard  int NOT NULL,
            n      bigint NOT NULL,
            PRIMARY KEY (status, shard)
        )""",
    ),
    # 2: the OTLP root span's id and hex trace id of a trace (see _otlp_links).
    (
        "ALTER TABLE traces ADD COLUMN root_span bytea",
        "ALTER TABLE traces ADD COLUMN otlp_trace bytea",
        "CREATE INDEX traces_by_otlp_trace ON traces (otlp_trace) WHERE otlp_trace IS NOT NULL",
    ),
    # 3: a span's hex OTLP span id, and that of a parent not found yet (see _otlp_links).
    (
        "ALTER TABLE spans ADD COLUMN otlp_id bytea",
        "ALTER TABLE spans ADD COLUMN otlp_parent bytea",
        "CREATE INDEX spans_by_otlp_id ON spans (trace_id, otlp_id) WHERE otlp_id IS NOT NULL",
        "CREATE INDEX spans_by_otlp_parent ON spans (trace_id, otlp_parent) "
        "WHERE otlp_parent IS NOT NULL",
    ),
)
SHARDS = 16

# Adds to the counts (one row per status changed; the shard picked per transaction).
ADD_COUNTS = """
INSERT INTO trace_counts AS c (status, shard, n)
SELECT u.status, $3, u.n FROM unnest($1::text[], $2::bigint[]) AS u(status, n)
ON CONFLICT (status, shard) DO UPDATE SET n = c.n + excluded.n
"""

# Whole traces or roots: a new id is inserted complete (with its spans' counts when they
# are all stored with it). RETURNING: the ids inserted now.
ROOTS = """
INSERT INTO traces AS t (id, name, start_us, status, complete, usage_tokens, span_tokens,
                         span_count, item, head)
SELECT u.id, u.name, u.start_us, u.status, true, u.usage_tokens, u.span_tokens,
       u.span_count, u.item, u.head
FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::text[], $5::bigint[],
            $6::bigint[], $7::bigint[], $8::bytea[], $9::bytea[])
     AS u(id, name, start_us, status, usage_tokens, span_tokens, span_count, item, head)
ON CONFLICT (id) DO NOTHING
RETURNING t.id
"""

# Roots of provisional traces (made by their spans) complete them; the counters stay,
# and a complete trace is left alone. RETURNING: the ids completed now, with the status
# before and after (the CTE locks the rows and keeps their old values).
COMPLETE = """
WITH u AS (
    SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::text[], $5::bigint[],
                         $6::bytea[], $7::bytea[])
           AS u(id, name, start_us, status, usage_tokens, item, head)
), old AS (
    SELECT t.id, t.status FROM traces t
    WHERE t.id IN (SELECT id FROM u) AND NOT t.complete
    ORDER BY t.id FOR UPDATE
)
UPDATE traces AS t SET
    name = u.name, start_us = u.start_us, status = u.status, complete = true,
    usage_tokens = u.usage_tokens, item = u.item, head = u.head
FROM u JOIN old ON old.id = u.id
WHERE t.id = u.id AND NOT t.complete
RETURNING t.id, old.status, t.status
"""

# Spans, each once by (trace id, span id). RETURNING: those stored now (their index).
SPANS = """
INSERT INTO spans (trace_id, id, body, otlp_id, otlp_parent)
SELECT u.trace_id, u.id, u.body, u.otlp_id, u.otlp_parent
FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[])
     WITH ORDINALITY AS u(trace_id, id, body, otlp_id, otlp_parent, n)
ORDER BY u.n
ON CONFLICT DO NOTHING
RETURNING trace_id, id
"""

# Traces that new spans belong to: a span of an unknown trace makes it provisional.
# RETURNING: the statuses of the rows made now (for trace_counts).
ENSURE = """
INSERT INTO traces (id, name, start_us, status, complete)
SELECT u.id, u.name, u.start_us, u.status, false
FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::text[]) AS u(id, name, start_us, status)
ON CONFLICT (id) DO NOTHING
RETURNING status
"""

# New spans count towards their trace (and stand in for a provisional trace's fields).
# RETURNING: the status before and after (the CTE locks the rows, keeping old values).
COUNT = f"""
WITH u AS (
    SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::text[], $5::bigint[],
                         $6::bigint[])
           AS u(id, name, start_us, status, tokens, count)
), old AS (
    SELECT t.id, t.status FROM traces t WHERE t.id IN (SELECT id FROM u)
    ORDER BY t.id FOR UPDATE
)
UPDATE traces AS t SET
    span_count = t.span_count + u.count,
    span_tokens = CASE WHEN t.span_tokens > {MAX_TOKENS} - u.tokens
        THEN {MAX_TOKENS} ELSE t.span_tokens + u.tokens END,
    name = CASE WHEN NOT t.complete AND u.start_us < t.start_us THEN u.name ELSE t.name END,
    start_us = CASE WHEN NOT t.complete AND u.start_us < t.start_us
        THEN u.start_us ELSE t.start_us END,
    status = CASE WHEN NOT t.complete AND u.status = 'error' THEN 'error' ELSE t.status END
FROM u JOIN old ON old.id = u.id
WHERE t.id = u.id
RETURNING old.status, t.status
"""

# The stored traces of new spans, by trace id or hex OTLP trace id, with their OTLP root
# (root_span NULL before it came). Locks the rows: a root completing one of them on
# another connection meanwhile is waited for, and seen.
LINKED = """
SELECT id, otlp_trace, root_span FROM traces
WHERE id = ANY($1::bytea[]) OR otlp_trace = ANY($1::bytea[])
ORDER BY id FOR UPDATE
"""

# Stored spans by (trace id, hex OTLP span id): the parents new spans wait for.
PARENTS = """
SELECT s.trace_id, s.otlp_id, s.id FROM spans s
JOIN unnest($1::bytea[], $2::bytea[]) AS u(trace_id, otlp_id)
  ON s.trace_id = u.trace_id AND s.otlp_id = u.otlp_id
"""

# Stored spans waiting for one of the parents (trace id, hex OTLP span id) stored now.
CHILDREN = """
SELECT s.trace_id, s.id, s.otlp_parent, s.body FROM spans s
JOIN unnest($1::bytea[], $2::bytea[]) AS u(trace_id, otlp_id)
  ON s.trace_id = u.trace_id AND s.otlp_parent = u.otlp_id
ORDER BY s.trace_id, s.id FOR UPDATE OF s
"""

# The spans of one trace waiting for a parent that is in it (after a move).
MOVED_CHILDREN = """
SELECT c.trace_id, c.id, c.otlp_parent, c.body, p.id FROM spans c
JOIN spans p ON p.trace_id = c.trace_id AND p.otlp_id = c.otlp_parent
WHERE c.trace_id = $1
ORDER BY c.id FOR UPDATE OF c
"""

# Transaction-scoped advisory locks, taken in the order given (sorted by the caller).
LOCK_TRACES = "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k"

# The provisional trace (under a hex OTLP trace id) whose spans move into their root's.
MOVE = """
WITH moved AS (
    UPDATE spans SET trace_id = $2
    WHERE trace_id = $1 AND id NOT IN (SELECT id FROM spans WHERE trace_id = $2)
    RETURNING 1
)
SELECT count(*) FROM moved
"""
