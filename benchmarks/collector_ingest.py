"""The collector's own throughput and paging, on SQLite and on PostgreSQL.

    python -m benchmarks.collector_ingest [--quick] [--append benchmarks/RESULTS.md]

Ingest: traces/s stored, from SDK clients in their own processes (2 processes, the SDK
at its defaults) to the collector's answer, for SQLite with one collector, PostgreSQL
with one collector, and PostgreSQL with two collectors on one database (each client
process sends to one of them, as a load balancer would spread them). Each round uses a
fresh database; the rounds interleave the three set-ups so that the machine's noise
falls on all of them; the stored count is checked against what the clients sent.

Listing: ``GET /api/traces`` latency over HTTP with a million stored traces, at depth 0
and 100,000, by ``offset`` and by ``cursor``. The million rows are bulk-loaded straight
into the schema the collector created (PostgreSQL ``COPY``, one SQLite transaction).

The PostgreSQL server is a throwaway cluster (``tests/_postgres.py``) with fsync off, so
the figures compare the stores' work, not the disk's. Figures are ratios within the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from tests._postgres import PostgresServer, find_bindir
from tracing.collector._sqlite import SqliteStore
from tracing.collector._storage import encode_cursor, open_store

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 2
_LISTENING = re.compile(r"listening on (http://\S+) ")


class Collector:
    """``python -m tracing.collector`` in its own process, logging to a file."""

    def __init__(self, db: str, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracing.collector", "--port", "0", "--db", db],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = _LISTENING.search(log.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the collector did not start:\n{log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_clients(endpoints: list[str], total: int) -> dict[str, float]:
    """Start the client processes, release them at once, return traces/s stored."""
    per = total // CLIENTS
    clients = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks._collector_client",
                endpoints[i % len(endpoints)],
                str(per),
                f"c{i}",
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(CLIENTS)
    ]
    for client in clients:
        assert client.stdout is not None
        if client.stdout.readline().strip() != "ready":
            raise RuntimeError("a client did not start")
    for client in clients:
        assert client.stdin is not None
        client.stdin.write("go\n")
        client.stdin.flush()
    results = []
    for client in clients:
        out, _ = client.communicate(timeout=900)
        results.append(json.loads(out.strip().splitlines()[-1]))
    sent = sum(r["sent"] for r in results)
    if sent != per * CLIENTS or any(r["failed"] or r["dropped"] for r in results):
        raise RuntimeError(f"not everything was delivered: {results}")
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {"rate": sent / seconds, "seconds": seconds, "sent": sent}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (``/proc/PID/stat``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def server_pids(pg: PostgresServer) -> list[int]:
    """The postmaster and its children (one backend per connection)."""
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
        except (FileNotFoundError, ValueError, IndexError):
            continue
    return pids


def stored(url: str) -> int:
    async def count() -> int:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/api/traces?limit=1") as r:
            return int((await r.json())["total"])

    return asyncio.run(count())


async def fresh_pg(pg: PostgresServer, name: str) -> str:
    conn = await asyncpg.connect(pg.url())
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return pg.url(name)


def ingest_round(pg: PostgresServer, tmp: Path, n: int, index: int) -> dict[str, float]:
    """One round of the three set-ups; traces/s for each."""
    rates: dict[str, float] = {}
    setups = [("sqlite", 1), ("postgres", 1), ("postgres", 2)]
    for kind, replicas in setups:
        if kind == "sqlite":
            db = str(tmp / f"ingest-{index}.db")
        else:
            db = asyncio.run(fresh_pg(pg, f"ingest_{index}_{replicas}"))
        collectors = [Collector(db, tmp / f"c{index}-{kind}-{r}.log") for r in range(replicas)]
        try:
            pids = [c.proc.pid for c in collectors]
            before = cpu_seconds(pids), cpu_seconds(server_pids(pg))
            result = run_clients([c.url for c in collectors], n)
            after = cpu_seconds(pids), cpu_seconds(server_pids(pg))
            count = stored(collectors[0].url)
            if count != result["sent"]:
                raise RuntimeError(f"{kind} x{replicas}: stored {count} of {result['sent']}")
        finally:
            for collector in collectors:
                collector.stop()
        rates[f"{kind}-{replicas}"] = result["rate"]
        rates[f"{kind}-{replicas}-cpu"] = (after[0] - before[0]) / result["sent"] * 1e6
        db_cpu = (after[1] - before[1]) / result["sent"] * 1e6 if kind == "postgres" else 0.0
        rates[f"{kind}-{replicas}-dbcpu"] = db_cpu
        print(
            f"  round {index}: {kind} x{replicas}: {result['rate']:,.0f} traces/s, "
            f"collector CPU {rates[f'{kind}-{replicas}-cpu']:.0f} us/trace, "
            f"PostgreSQL CPU {db_cpu:.0f} us/trace",
            flush=True,
        )
    return rates


BASE_US = 1_795_262_400_000_000  # 2026-11-21T12:00:00Z


def synthetic(i: int) -> tuple[Any, ...]:
    """The columns of stored trace i (one per millisecond, every tenth an error)."""
    trace_id = f"{i:08d}-bench-trace"
    status = "error" if i % 10 == 0 else "ok"
    item = orjson.dumps(
        {"id": trace_id, "name": f"bench.{i % 4}", "description": None,
         "startTime": None, "endTime": None, "duration": 1.5, "status": status,
         "error": None, "inputSummary": "a question", "outputSummary": "an answer",
         "tags": ["bench"], "llmUsage": None}
    )  # fmt: skip
    return (trace_id, f"bench.{i % 4}", BASE_US + i * 1000, status, item)


async def load_postgres(url: str, rows: int) -> None:
    store = open_store(url)
    await store.open()  # creates the schema
    await store.close()
    conn = await asyncpg.connect(url)
    try:
        records = (
            (t.encode(), n.encode(), s, st, True, None, 213, 2, item, item)
            for t, n, s, st, item in map(synthetic, range(rows))
        )
        await conn.copy_records_to_table(
            "traces",
            records=records,
            columns=["id", "name", "start_us", "status", "complete", "usage_tokens",
                     "span_tokens", "span_count", "item", "head"],
        )  # fmt: skip
        await conn.execute(  # what the writes keep: the counts per status
            "INSERT INTO trace_counts SELECT status, 0, count(*) FROM traces GROUP BY status"
        )
        await conn.execute("VACUUM ANALYZE traces")
    finally:
        await conn.close()


async def load_sqlite(path: Path, rows: int) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.close()
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO traces VALUES (?, ?, ?, ?, 1, NULL, 213, 2, ?, ?)",
            ((t, n, s, st, item, item) for t, n, s, st, item in map(synthetic, range(rows))),
        )
        conn.execute("ANALYZE")


async def list_latency(url: str, rows: int, depth: int, repeats: int) -> dict[str, float]:
    """Median ms of GET /api/traces (limit 50) at depth 0 and ``depth``."""
    newest = rows - 1
    at_depth = newest - depth + 1  # the trace just before position ``depth``
    _, _, start_us, _, _ = synthetic(at_depth)
    cursor = encode_cursor(start_us, synthetic(at_depth)[0])
    queries = {
        "offset 0": "limit=50",
        f"offset {depth:,}": f"limit=50&offset={depth}",
        "cursor, first page": "limit=50",
        f"cursor at {depth:,}": f"limit=50&cursor={cursor}",
        f"status=error, cursor at {depth:,}": f"limit=50&status=error&cursor={cursor}",
    }
    times: dict[str, list[float]] = {label: [] for label in queries}
    async with aiohttp.ClientSession() as http:
        for _ in range(repeats):  # interleaved, so that the machine's noise hits all alike
            for label, query in queries.items():
                started = time.perf_counter()
                async with http.get(f"{url}/api/traces?{query}") as response:
                    page = await response.json()
                times[label].append((time.perf_counter() - started) * 1000)
                assert response.status == 200, page
                assert len(page["traces"]) == 50, page
                assert page["total"] == (rows // 10 if "status" in query else rows), page
    medians = {label: statistics.median(values) for label, values in times.items()}
    return medians


def listing(pg: PostgresServer, tmp: Path, rows: int, depth: int) -> dict[str, dict[str, float]]:
    """List latencies per store over ``rows`` stored traces."""
    results: dict[str, dict[str, float]] = {}
    url = asyncio.run(fresh_pg(pg, "listing"))
    path = tmp / "listing.db"
    for kind, db in (("SQLite", str(path)), ("PostgreSQL", url)):
        started = time.perf_counter()
        asyncio.run(load_sqlite(path, rows) if kind == "SQLite" else load_postgres(url, rows))
        print(f"  loaded {rows:,} rows into {kind} in {time.perf_counter() - started:.0f} s")
        collector = Collector(db, tmp / f"list-{kind}.log")
        try:
            asyncio.run(list_latency(collector.url, rows, depth, 3))  # warm the cache
            results[kind] = asyncio.run(list_latency(collector.url, rows, depth, 31))
        finally:
            collector.stop()
        print(f"  {kind}: {results[kind]}", flush=True)
    return results


def report(
    rounds: list[dict[str, float]], lists: dict[str, dict[str, float]], n: int, rows: int
) -> str:
    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    sqlite, pg1, pg2 = median("sqlite-1"), median("postgres-1"), median("postgres-2")
    per_round = ", ".join(f"{r['postgres-2'] / r['postgres-1']:.2f}" for r in rounds)
    lines = [
        "## Collector ingest and paging (`benchmarks/collector_ingest.py`)",
        "",
        f"Ingest: {n:,} traces (2 spans each) per set-up and round, from {CLIENTS} SDK "
        f"client processes at the SDK's defaults; {len(rounds)} interleaved rounds, fresh "
        "database each; every trace stored was counted back. PostgreSQL: a local throwaway "
        "cluster (fsync off). All processes share the machine's cores.",
        "",
        "| set-up | traces/s stored (median) | vs SQLite | vs PostgreSQL, 1 collector "
        "| collector CPU µs/trace (all replicas) | PostgreSQL server CPU µs/trace |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| SQLite, 1 collector | {sqlite:,.0f} | 1.00 | {sqlite / pg1:.2f} "
        f"| {median('sqlite-1-cpu'):.0f} | n/a |",
        f"| PostgreSQL, 1 collector | {pg1:,.0f} | {pg1 / sqlite:.2f} | 1.00 "
        f"| {median('postgres-1-cpu'):.0f} | {median('postgres-1-dbcpu'):.0f} |",
        f"| PostgreSQL, 2 collectors | {pg2:,.0f} | {pg2 / sqlite:.2f} | {pg2 / pg1:.2f} "
        f"| {median('postgres-2-cpu'):.0f} | {median('postgres-2-dbcpu'):.0f} |",
        "",
        f"- Two collectors against one, per round: {per_round}.",
        "",
        f"Listing: `GET /api/traces?limit=50` over HTTP with {rows:,} stored traces, median "
        "of 31 rounds over the five queries in turn, after 3 warm-up rounds (each answer "
        "includes the exact `total`).",
        "",
        "| query | " + " | ".join(f"{k} ms" for k in lists) + " | "
        + " | ".join(f"{k} vs its first page" for k in lists) + " |",
        "| --- | " + " | ".join(["---:"] * (2 * len(lists))) + " |",
    ]  # fmt: skip
    labels = list(next(iter(lists.values())))
    for label in labels:
        times = [f"{lists[k][label]:.1f}" for k in lists]
        ratios = [f"{lists[k][label] / lists[k]['offset 0']:.2f}" for k in lists]
        lines.append(f"| {label} | " + " | ".join(times + ratios) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller: a smoke run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--append", type=Path, help="append the section to this file")
    args = parser.parse_args()
    n, rows, depth = (4_000, 120_000, 100_000) if args.quick else (20_000, 1_000_000, 100_000)
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL is missing: apt-get install postgresql")
    pg = PostgresServer(bindir)
    pg.start()
    try:
        with tempfile.TemporaryDirectory(prefix="collector-bench-") as tmp:
            rounds = [ingest_round(pg, Path(tmp), n, i) for i in range(args.rounds)]
            lists = listing(pg, Path(tmp), rows, depth)
    finally:
        pg.destroy()
    section = report(rounds, lists, n, rows)
    print(section)
    if args.append:
        with args.append.open("a") as out:
            out.write("\n" + section)


if __name__ == "__main__":
    main()
