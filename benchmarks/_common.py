"""What every driver shares: the 1 KB payload, the loop-lag ticker, per-call timing and
the one-line JSON report a driver prints for ``run.py``.

A driver is its own process: ``python -m benchmarks.drive_x --sink URL --n N``. It pushes
N records through one public API, yielding to the event loop every ``YIELD_EVERY``
records (as an application serving requests would), waits until its library says every
record was delivered, then checks the sink's count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from array import array
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = [
    "INPUT",
    "METADATA",
    "OUTPUT",
    "ROOT",
    "SCALE_ENV",
    "YIELD_EVERY",
    "LagTicker",
    "Recorder",
    "append_section",
    "free_port",
    "main",
    "record_dict",
    "rss_now_mb",
    "start_sink",
    "texts",
]

ROOT = Path(__file__).resolve().parent.parent


def texts(scale: int = 1) -> tuple[str, str]:
    """The input and output of every driver's traces: ~600 and ~300 characters, or
    ``scale`` times as long (prompts and answers the size of an LLM call's)."""
    return (
        ("Summarise the following customer ticket in two sentences. " * 11 * scale)[: 600 * scale],
        ("The customer cannot log in after the password reset email expired. " * 5 * scale)[
            : 300 * scale
        ],
    )


# Same content for every driver: ~600 chars in, ~300 out, four metadata keys, tokens.
# ``SCALE_ENV`` (set by ``benchmarks.spool --scale``) makes the texts that many times longer.
SCALE_ENV = "BENCH_TRACE_SCALE"
INPUT, OUTPUT = texts(int(os.environ.get(SCALE_ENV, "1")))
METADATA = {"user_id": "user-1234", "session": "s-5678", "env": "bench", "route": "/chat"}
MODEL, PROVIDER, PROMPT_TOKENS, COMPLETION_TOKENS = "gpt-4o-mini", "openai", 152, 61
NAME = "summarize-ticket"
YIELD_EVERY = 100


def record_dict(i: int) -> dict[str, Any]:
    """The floors' record: the same fields as a trace, as a plain dict."""
    return {
        "id": f"{i:032x}",
        "name": NAME,
        "startTime": "2026-11-22T00:00:00.000000Z",
        "endTime": "2026-11-22T00:00:00.001000Z",
        "duration": 0.001,
        "status": "ok",
        "input": INPUT,
        "output": OUTPUT,
        "metadata": METADATA,
        "llmUsage": {
            "model": MODEL,
            "provider": PROVIDER,
            "promptTokens": PROMPT_TOKENS,
            "completionTokens": COMPLETION_TOKENS,
        },
    }


class LagTicker:
    """A task that sleeps 1 ms at a time and records how late it wakes (the loop's lag)."""

    def __init__(self) -> None:
        self.max_lag = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        clock = time.perf_counter
        while True:
            before = clock()
            await asyncio.sleep(0.001)
            lag = clock() - before - 0.001
            if lag > self.max_lag:
                self.max_lag = lag

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Recorder:
    """Per-call enqueue-path times, in ns, in a preallocated array."""

    def __init__(self, n: int) -> None:
        self.times = array("q", bytes(8 * n))
        self.n = 0

    def add(self, ns: int) -> None:
        self.times[self.n] = ns
        self.n += 1

    def summary(self) -> dict[str, float | None]:
        if not self.n:
            return {"enqueue_median_us": None, "enqueue_p99_us": None}
        values = sorted(self.times[: self.n])
        return {
            "enqueue_median_us": values[len(values) // 2] / 1000,
            "enqueue_p99_us": values[min(len(values) - 1, int(len(values) * 0.99))] / 1000,
        }


def rss_now_mb() -> float:
    """Current (not peak) resident memory of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def sink_stats(sink: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sink}/_stats", timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_sink(port: int, lifetime: float) -> subprocess.Popen[bytes]:
    """The loopback sink in its own process on ``port``, once it answers (the caller
    kills it by its PID)."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "benchmarks._sink"),
            *("--port", str(port), "--lifetime", str(lifetime)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            sink_stats(f"http://127.0.0.1:{port}")
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the sink did not start")


def append_section(path: str | os.PathLike[str] | None, text: str) -> None:
    """Print a report section, and append it to ``path`` (a markdown file) if given."""
    print(text)
    if path is not None:
        with open(path, "a") as f:
            f.write("\n" + text)


def sink_reset(sink: str) -> None:
    request = urllib.request.Request(f"{sink}/_reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def wait_for_count(sink: str, n: int, seconds: float = 10.0) -> dict[str, Any]:
    """The sink's counters once it has counted n records (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    stats = sink_stats(sink)
    while stats["records"] < n and time.monotonic() < deadline:
        time.sleep(0.02)
        stats = sink_stats(sink)
    return stats


# A driver's body: given (sink, n, recorder), push n records, return once its library
# says they are delivered. It returns the perf_counter time of the first enqueue and the
# end time, plus anything extra to report.
PREPARED: list[Any] = []
Body = Callable[[str, int, Recorder], Awaitable[dict[str, Any]]]


def main(
    name: str,
    body: Body,
    *,
    asyncio_native: bool,
    default_n: int = 100_000,
    prepare: Callable[[int], Any] | None = None,
) -> None:
    """Parse arguments, run one measurement, print one JSON line."""
    parser = argparse.ArgumentParser(description=f"benchmark driver: {name}")
    parser.add_argument("--sink", required=True)
    parser.add_argument("--n", type=int, default=default_n)
    parser.add_argument("--variant", default="")
    args = parser.parse_args()
    result: dict[str, Any] = {"driver": name, "n": args.n, "asyncio_native": asyncio_native}
    try:
        if prepare is not None:
            PREPARED.append(prepare(args.n))  # built before any clock or ticker starts
        result.update(asyncio.run(_measure(args.sink, args.n, body)))
    except Exception as exc:  # report and let run.py carry on with the other drivers
        result["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(result), flush=True)


async def _measure(sink: str, n: int, body: Body) -> dict[str, Any]:
    sink_reset(sink)
    gc.collect()
    ticker = LagTicker()
    ticker.start()
    recorder = Recorder(n)
    await asyncio.sleep(0.01)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    extra = await body(sink, n, recorder)
    cpu1 = time.process_time()
    await ticker.stop()
    start, end = extra.pop("start", wall0), extra.pop("end", time.perf_counter())
    stats = await asyncio.to_thread(wait_for_count, sink, n)
    elapsed = end - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        **recorder.summary(),
        "seconds": elapsed,
        "throughput": n / elapsed if elapsed > 0 else None,
        "cpu_us_per_trace": (cpu1 - cpu0) / n * 1e6,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "max_loop_lag_ms": ticker.max_lag * 1000,
        "sink_records": stats["records"],
        "sink_requests": stats["requests"],
        "sink_bytes": stats["bytes"],
        "sink_cpu_s": stats["cpu_s"],
        "verified": stats["records"] == n,
        **extra,
    }


def python_version() -> str:
    return sys.version.split()[0]


# OTLP micro-benchmarks (issue 10): what bench_encode and bench_otlp_ingest share --------
# Their workloads, the per-span timer, and the section they append to RESULTS.md.

TRACES = 100  # traces per request
ROUNDS = 7


def bench_records() -> list[Any]:
    """``TRACES`` ended copies of the ``make bench`` record (one root span, LLM usage)."""
    from tracing import LlmUsage, Trace

    usage = LlmUsage(MODEL, PROVIDER, prompt_tokens=PROMPT_TOKENS, completion_tokens=61)
    out = []
    for _ in range(TRACES):
        trace = Trace(NAME, input=INPUT, output=OUTPUT, metadata=dict(METADATA), llm_usage=usage)
        trace._finish()
        out.append(trace)
    return out


def deep_traces(full: bool) -> list[Any]:
    """``TRACES`` traces of 20 child spans: with input, output, usage and metadata that
    differ in every span (``full``), or names and times only."""
    from datetime import timedelta

    from tracing import LlmUsage, Span, Trace

    out = []
    for t in range(TRACES):
        trace = Trace("agent-run", input=f"question {t}" if full else None)
        trace._finish()
        for i in range(20):
            span = Span(f"step-{i}", start_time=trace.start_time, parent_id=None)
            span.end_time = trace.start_time + timedelta(microseconds=i + 1)
            if full:
                span.input = {"messages": [{"role": "user", "content": f"ask {t}.{i} " * 8}]}
                span.output = f"answer {t}.{i} " * 10
                span.llm_usage = LlmUsage(f"model-{t}-{i}", PROVIDER, t + i, 2 * i)
                span.metadata = {"user_id": f"user-{t}-{i}", "attempt": i, "score": i / 7}
            trace.spans.append(span)
        out.append(trace)
    return out


def per_span_us(fn: Callable[[], object], spans: int) -> float:
    """Best-of-``ROUNDS`` CPU time of ``fn`` per span, in microseconds (GC off while
    timing)."""
    fn()
    times = []
    for _ in range(ROUNDS):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            for _ in range(10):
                fn()
            times.append((time.process_time() - start) / 10)
        finally:
            gc.enable()
    return min(times) / spans * 1e6


def markdown_section(
    title: str, intro: str, columns: list[str], rows: list[list[str]], notes: list[str]
) -> str:
    """A RESULTS.md section: title, intro, a table (first column left-aligned, the others
    right-aligned) and notes as a list."""
    lines = [f"## {title}", "", intro, "", "| " + " | ".join(columns) + " |"]
    lines.append("| --- |" + " ---: |" * (len(columns) - 1))
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([*lines, "", *(f"- {note}" for note in notes), ""])


def run_workloads(
    doc: str,
    workload: Callable[[str, list[Any]], dict[str, Any]],
    section: Callable[[list[dict[str, Any]]], str],
) -> None:
    """The ``main()`` of an OTLP micro-benchmark: each workload measured, the section
    printed and, with ``--append FILE``, added to that file."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--append", help="append the section to this markdown file")
    args = parser.parse_args()
    results = [
        workload("bench record", bench_records()),
        workload("20-span trace", deep_traces(full=True)),
        workload("bare spans", deep_traces(full=False)),
    ]
    text = section(results)
    print(text)
    if args.append:
        with open(args.append, "a") as f:
            f.write("\n" + text)
