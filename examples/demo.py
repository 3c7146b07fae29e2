"""`make demo`: start the collector, run the agent service through the SDK, and show what
arrived, read back from the collector's API, next to the SDK's own ``stats()``. Then
instrumented OpenAI and Anthropic clients (``llm_clients.py``) call a local fake API (no
network, no key) and their LLM spans are shown as the collector stored them.

    python examples/demo.py [--requests 3000] [--concurrency 200] [--db .demo/collector.db]

The collector runs as a subprocess on a free port with its SQLite file at ``--db``
(emptied first, so the numbers are this run's); it is stopped at the end. The traces
stay in the file: the last lines print the command that shows them in the viewer
(``make serve`` for the default ``--db``). Exits 1 if the collector
did not store exactly what the SDK says it delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from agent_service import Tally, run
from llm_clients import report as report_llm
from llm_clients import run as run_llm

from tracing import Stats
from tracing._wire import DEFAULT_PORT

_LISTENING = re.compile(r"listening on (http://\S+)")
DEFAULT_DB = ".demo/collector.db"  # what `make serve` opens, in the repository
REPO = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def collector(db: Path, log: Path) -> AsyncIterator[str]:
    """``python -m tracing.collector --port 0`` with its log in ``log``; yields its URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tracing.collector",
        "--port",
        "0",
        "--db",
        str(db),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def copy_log() -> None:
        # Drain the pipe for the whole run (a full pipe would stall the collector).
        assert proc.stderr is not None
        with log.open("w") as out:
            async for raw in proc.stderr:
                line = raw.decode(errors="replace")
                out.write(line)
                if not started.done() and (found := _LISTENING.search(line)):
                    started.set_result(found.group(1))
        if not started.done():
            started.set_exception(RuntimeError(f"the collector exited; see {log}"))

    reader = asyncio.create_task(copy_log(), name="collector-log")
    try:
        async with asyncio.timeout(30):
            url = await started
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            async with asyncio.timeout(15):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await reader


async def read_back(url: str) -> list[dict[str, Any]]:
    """Every stored trace summary, paging through ``GET /api/traces``."""
    traces: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        while True:
            query = {"limit": 1000, "offset": len(traces)}
            async with http.get(f"{url}/api/traces", params=query) as response:
                response.raise_for_status()
                page = await response.json()
            traces += page["traces"]
            if not page["traces"] or len(traces) >= page["total"]:
                return traces


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(share * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def report(
    stats: Stats, tally: Tally, traces: list[dict[str, Any]], seconds: float, db: Path
) -> bool:
    """Print the summary; True when the collector holds exactly what was delivered."""
    status = Counter(t["status"] for t in traces)
    durations = sorted(float(t["duration"] or 0.0) for t in traces)
    tokens = sum(int(t["totalTokens"]) for t in traces)
    spans = sum(int(t["spanCount"]) for t in traces)
    with_usage = [t["llmUsage"] for t in traces if t.get("llmUsage")]
    rows = [
        ("traces", f"{tally.requests:,} made", f"{stats.sent:,} sent", f"{len(traces):,} stored"),
        ("  status ok", f"{tally.requests - tally.errors:,}", "", f"{status['ok']:,}"),
        ("  status error", f"{tally.errors:,}", "", f"{status['error']:,}"),
        ("spans", f"{tally.spans:,}", "", f"{spans:,}"),
        (
            "tokens (total)",
            f"{tally.prompt_tokens + tally.completion_tokens:,}",
            "",
            f"{tokens:,}",
        ),
    ]
    print()
    print(f"tracing demo: {tally.requests:,} agent requests in {seconds:.1f} s")
    print()
    print(f"  {'':<16}{'workload':>14}{'SDK stats()':>14}{'collector API':>16}")
    for name, made, sdk, stored in rows:
        print(f"  {name:<16}{made:>14}{sdk:>14}{stored:>16}")
    print()
    print(
        f"  SDK stats(): enqueued={stats.enqueued:,} sent={stats.sent:,} "
        f"failed={stats.failed} dropped={stats.dropped} retries={stats.retries} "
        f"batches={stats.batches} queue_size={stats.queue_size} in_flight={stats.in_flight}"
    )
    print(
        f"  trace duration (collector): p50 {ms(percentile(durations, 0.50))}, "
        f"p90 {ms(percentile(durations, 0.90))}, p99 {ms(percentile(durations, 0.99))}, "
        f"max {ms(durations[-1] if durations else 0.0)}"
    )
    print(
        f"  tokens (collector): {tokens:,} in all; on completed requests "
        f"{sum(u['promptTokens'] for u in with_usage):,} prompt + "
        f"{sum(u['completionTokens'] for u in with_usage):,} completion "
        f"in {sum(u['apiCallsCount'] for u in with_usage):,} LLM calls"
    )
    by_name = Counter(t["name"] for t in traces)
    print("  by name: " + ", ".join(f"{n} {c:,}" for n, c in sorted(by_name.items())))
    print()
    print(f"  database: {db}")
    print(f"  viewer:   run `{serve_command(db)}`, then open http://127.0.0.1:{DEFAULT_PORT}/")
    if db == REPO / DEFAULT_DB:
        print(f"            (`make serve` in {REPO} does the same)")
    ok = (
        stats.sent == len(traces) == tally.requests
        and stats.failed == stats.dropped == 0
        and status["error"] == tally.errors
        and tokens == tally.prompt_tokens + tally.completion_tokens
        and spans == tally.spans
    )
    print("  check:    " + ("every trace arrived, once" if ok else "MISMATCH (see above)"))
    print()
    return ok


def serve_command(db: Path) -> str:
    """The command that shows this run's database (``make serve`` opens only the default
    one, in the repository: it is named only for that one)."""
    return f"{shlex.quote(sys.executable)} -m tracing.collector --db {shlex.quote(str(db))}"


def prepare(path: str) -> Path:
    """An empty database path (this run's numbers only), its folder made."""
    db = Path(path).resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    ignore = db.parent / ".gitignore"
    if db.parent.name == ".demo" and not ignore.exists():
        ignore.write_text("# made by examples/demo.py: nothing here belongs in git\n*\n")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return db


async def demo(args: argparse.Namespace, db: Path) -> bool:
    log = db.with_suffix(".log")
    async with collector(db, log) as url:
        print(f"collector: {url} (db {db}, log {log})")
        print(f"agent service: {args.requests:,} requests, {args.concurrency} at a time ...")
        began = time.perf_counter()
        stats, tally = await run(url, requests=args.requests, concurrency=args.concurrency)
        seconds = time.perf_counter() - began
        traces = await read_back(url)
        # Then instrumented OpenAI/Anthropic clients against a local fake API (no network);
        # the agent summary comes last, so the viewer command stays the last lines.
        llm_stats, served = await run_llm(url)
        llm_ok = await report_llm(url, llm_stats, served, known={t["id"] for t in traces})
    return report(stats, tally, traces, seconds, db) and llm_ok


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the tracing demo end to end.")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--db", default=DEFAULT_DB)
    args = parser.parse_args()
    return 0 if asyncio.run(demo(args, prepare(args.db))) else 1


if __name__ == "__main__":
    sys.exit(main())
