"""Run every driver against one loopback sink, interleaved, and write the report.

    python -m benchmarks.run            # 5 rounds, N = 100,000 (make bench)
    python -m benchmarks.run --quick    # 1 round, N = 10,000 (smoke run)

Starts ``benchmarks._sink`` in its own process and kills it by PID at the end; each
driver is its own process with a time limit. A driver that fails is reported with its
error and the run goes on. Writes ``benchmarks/RESULTS.md`` and ``benchmarks/results.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
DRIVER_TIMEOUT = 900.0


@dataclass
class Driver:
    key: str
    label: str
    module: str
    kind: str  # "sdk", "peer", "floor", "extra"
    variant: str = ""
    n: int | None = None  # None: the run's N
    settings: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)

    def argv(self, sink: str, n: int) -> list[str]:
        args = [PY, "-m", f"benchmarks.{self.module}", "--sink", sink, "--n", str(self.n or n)]
        return args + (["--variant", self.variant] if self.variant else [])


def drivers(quick: bool) -> list[Driver]:
    queue_n = "max_queue_size=N"
    return [
        Driver("tracing", "tracing: trace()+end()", "drive_tracing", "sdk", settings=queue_n),
        Driver(
            "tracing-enqueue",
            "tracing: enqueue() of ready traces",
            "drive_tracing",
            "sdk",
            "enqueue",
            settings=queue_n,
        ),
        Driver(
            "tracing-gzip",
            'tracing: trace()+end(), compression="gzip"',
            "drive_tracing",
            "extra",
            "gzip",
            settings=f'{queue_n}, compression="gzip"',
        ),
        Driver(
            "tracing-otlp",
            'tracing: trace()+end(), protocol="otlp"',
            "drive_tracing",
            "sdk",
            "otlp",
            settings=f'{queue_n}, protocol="otlp"',
        ),
        Driver(
            "otel",
            "OpenTelemetry BatchSpanProcessor + OTLP/HTTP",
            "drive_otel",
            "peer",
            settings="max_queue_size=N",
        ),
        Driver(
            "posthog-sync",
            "PostHog client (sync, thread)",
            "drive_posthog",
            "peer",
            "sync",
            settings="max_queue_size=N",
        ),
        Driver(
            "posthog-async",
            "PostHog AsyncClient",
            "drive_posthog",
            "peer",
            "async",
            settings="max_queue_size=N; flush(timeout_seconds=None)",
        ),
        Driver(
            "segment",
            "Segment analytics-python",
            "drive_segment",
            "peer",
            settings="max_queue_size=N",
        ),
        Driver(
            "infinium",
            "Infinium AsyncInfiniumClient.send_tasks_batch",
            "drive_infinium",
            "peer",
            n=500 if quick else 2_000,
            settings="enable_rate_limiting=False; N=2,000 (one request per record)",
        ),
        Driver(
            "floor",
            "floor: asyncio.Queue + orjson + aiohttp",
            "drive_floor_queue",
            "floor",
            settings="4 consumers, batches of 100",
        ),
        Driver(
            "floor-batches",
            "floor: pre-serialised batches + aiohttp",
            "drive_floor_batches",
            "floor",
            settings="4 tasks, batches of 100, bodies built before the clock",
        ),
        Driver(
            "floor-depth",
            "floor: 10,000 queued, then drained",
            "drive_floor_queue",
            "floor",
            "depth",
            n=10_000,
            settings="4 consumers started once 10,000 records are queued",
        ),
        Driver(
            "drain",
            "tracing: shutdown() with 10,000 queued",
            "drive_tracing",
            "extra",
            "drain",
            n=10_000,
            settings="all defaults (max_queue_size=10,000)",
        ),
    ]


@contextlib.contextmanager
def sink_process() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "port")
        proc = subprocess.Popen(
            [PY, "-m", "benchmarks._sink", "--port", "0", "--ready-file", ready],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(ready):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sink did not start")
                time.sleep(0.05)
            with open(ready) as f:
                yield f"http://127.0.0.1:{f.read().strip()}"
        finally:
            proc.kill()  # by PID: only the process this run started
            proc.wait(10)


PAIRS = (("tracing", "floor"), ("tracing-otlp", "otel"))


def round_order(selected: list[Driver], round_no: int) -> list[Driver]:
    """Rotate the order each round so no driver always runs first or last; this SDK and
    the floor run back to back (which one first alternates), and so do this SDK's OTLP
    mode and OpenTelemetry's SDK, so their same-round ratios compare the same minute of a
    noisy machine."""
    units: list[list[Driver]] = []
    for keys in PAIRS:
        pair = [d for d in selected if d.key in keys]
        if pair:
            units.append(pair[:: -1 if round_no % 2 else 1])
    paired = {d.key for unit in units for d in unit}
    units += [[d] for d in selected if d.key not in paired]
    shift = round_no % len(units) if units else 0
    return [d for unit in units[shift:] + units[:shift] for d in unit]


def run_driver(driver: Driver, sink: str, n: int, log_dir: Path) -> dict[str, Any]:
    log = log_dir / f"{driver.key}.log"
    try:
        with open(log, "a") as stderr:
            done = subprocess.run(
                driver.argv(sink, n),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                timeout=DRIVER_TIMEOUT,
            )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            return {"error": f"exit status {done.returncode}, no result (see {log.name})"}
        result: dict[str, Any] = json.loads(lines[-1])
        return result
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {DRIVER_TIMEOUT:.0f}s"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 round, N=10,000")
    parser.add_argument("--rounds", type=int, help="default 5 (1 with --quick)")
    parser.add_argument("--n", type=int)
    parser.add_argument("--only", help="comma-separated driver keys")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--chart", default=str(HERE / "results.png"))
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from _out/results.json"
    )
    args = parser.parse_args()
    raw = HERE / "_out" / "results.json"
    if args.report_only:
        saved = json.loads(raw.read_text())
        report(args, [Driver(**d) for d in saved["drivers"]], saved["n"], saved["rounds"], 0)
        return
    n = args.n or (10_000 if args.quick else 100_000)
    rounds = args.rounds or (1 if args.quick else 5)
    selected = drivers(args.quick)
    if args.only:
        keys = set(args.only.split(","))
        selected = [d for d in selected if d.key in keys]
    log_dir = HERE / "_out" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with sink_process() as sink:
        for round_no in range(rounds):
            for driver in round_order(selected, round_no):
                result = run_driver(driver, sink, n, log_dir)
                result["round"] = round_no
                driver.results.append(result)
                print(_one_line(driver, result), flush=True)
    saved = {"n": n, "rounds": rounds, "drivers": [d.__dict__ for d in selected]}
    raw.write_text(json.dumps(saved, indent=1))
    report(args, selected, n, rounds, time.time() - started)


def report(args: argparse.Namespace, selected: list[Driver], n: int, rounds: int, s: float) -> None:
    from benchmarks._report import write_chart, write_report

    write_report(Path(args.out), selected, n=n, rounds=rounds, seconds=s)
    write_chart(Path(args.chart), selected)
    print(f"wrote {args.out} and {args.chart}")


def _one_line(driver: Driver, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"[round {r['round'] + 1}] {driver.label}: ERROR {r['error']}"
    return (
        f"[round {r['round'] + 1}] {driver.label}: {r['throughput']:,.0f}/s, "
        f"enqueue median {r['enqueue_median_us']} us, cpu {r['cpu_us_per_trace']:.1f} us/trace, "
        f"lag {r['max_loop_lag_ms']:.1f} ms, rss {r['peak_rss_mb']:.0f} MB, "
        f"verified={r['verified']}"
    )


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in [
        "aiotracing",
        "aiohttp",
        "orjson",
        "attrs",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "posthog",
        "segment-analytics-python",
        "infinium-o2",
    ]:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem = f", {int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB RAM"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


if __name__ == "__main__":
    main()
