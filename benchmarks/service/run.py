"""What tracing costs a FastAPI service under load: uvicorn in its own process, wrk outside.

    python -m benchmarks.service.run              # 3 rounds x 8 s per variant (make bench-service)
    python -m benchmarks.service.run --quick      # 1 round x 3 s: a smoke run

Each variant of ``benchmarks/service/app.py`` is served by uvicorn (one worker, its
default loop and HTTP parser: uvloop and httptools, as ``uvicorn[standard]`` installs)
and loaded by ``wrk -t1 -c32`` against ``GET /items/{id}``, after a 1 s warm-up. Rounds
are interleaved: every traced run sits between two untraced ones, and its requests/s,
p50 and p99 are reported as ratios to their mean (the order of the traced variants
rotates from round to round). After each run uvicorn gets SIGTERM, so its
lifespan delivers what was queued, and the sink's count says what arrived. Writes its
own section of ``benchmarks/RESULTS.md`` and ``benchmarks/service.png``; raw results go
to ``benchmarks/_out/service.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

from benchmarks._common import sink_reset, sink_stats
from benchmarks.run import HERE, PY, ROOT, sink_process

VARIANTS = ("none", "tracing", "otel", "sentry")
LABELS = {
    "none": "no tracing",
    "tracing@before": "this SDK, the `--compare` checkout (same app)",
    "tracing": "this SDK: TracingMiddleware + 2 observed functions",
    "tracing-middleware": "this SDK: TracingMiddleware only",
    "tracing-flush100": "this SDK, flush_at=100",
    "otel": "OpenTelemetry FastAPIInstrumentor + BatchSpanProcessor + OTLP/HTTP",
    "sentry": "Sentry (FastAPI integration, traces_sample_rate=1.0, 2 spans)",
}
_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


class Server:
    """uvicorn serving one variant on a free port; ready once its log says so."""

    def __init__(self, variant: str, sink: str, log: IO[str], cwd: Path = ROOT) -> None:
        env = {**os.environ, "BENCH_VARIANT": variant, "BENCH_SINK": sink}
        argv = [PY, "-m", "uvicorn", "--factory", "benchmarks.service.app:from_env"]
        argv += ["--host", "127.0.0.1", "--port", "0", "--no-access-log", "--log-level", "info"]
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stderr=subprocess.PIPE, stdout=log, text=True
        )
        self.log = log
        self.port = self._wait_ready()
        assert self.proc.stderr is not None
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()

    def _wait_ready(self) -> int:
        assert self.proc.stderr is not None
        port, started = 0, False
        for line in self.proc.stderr:  # EOF (a crash) ends the loop
            self.log.write(line)
            if match := _RUNNING.search(line):
                port = int(match.group(1))
            started = started or "Application startup complete" in line
            if started and port:
                return port
        raise RuntimeError(f"uvicorn exited with {self.proc.wait()} before it was ready")

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self.log.write(line)

    def stop(self) -> int:
        """SIGTERM (by PID), and wait for the lifespan shutdown to deliver."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def wrk(url: str, seconds: float, connections: int) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s|m))\s*$", out, re.M))
    if "50" not in latency or "99" not in latency:
        raise RuntimeError(f"cannot read wrk's output: {out!r}")
    result: dict[str, Any] = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "errors": "Non-2xx" in out or "Socket errors" in out,
    }
    for pct in ("50", "99"):
        value = re.match(r"([\d.]+)(us|ms|s|m)$", latency[pct])
        assert value is not None
        result[f"p{pct}_ms"] = float(value.group(1)) * _UNITS[value.group(2)]
    return result


def run_one(variant: str, sink: str, args: argparse.Namespace, log: IO[str]) -> dict[str, Any]:
    # "tracing@before": the same variant served from the --compare tree (another checkout).
    name, _, before = variant.partition("@")
    server = Server(name, sink, log, Path(args.compare) if before else ROOT)
    try:
        url = f"http://127.0.0.1:{server.port}/items/42?currency=EUR"
        wrk(url, 1, args.connections)  # warm-up: connections, caches, the sink's pool
        sink_reset(sink)
        result = wrk(url, args.seconds, args.connections)
    finally:
        result_code = server.stop()
    stats = sink_stats(sink)
    result.update(exit=result_code, sink_records=stats["records"], sink_requests=stats["requests"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--chart", default=str(HERE / "service.png"))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--compare",
        help="another checkout (an older commit): adds its 'tracing' variant as tracing@before, "
        "interleaved with the others, and its ASGI driver run",
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (3.0 if args.quick else 8.0)
    raw = HERE / "_out" / "service.json"
    if args.report_only:
        saved = json.loads(raw.read_text())
    else:
        saved = measure(args)
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(saved, indent=1))
    from benchmarks.service._report import write_chart, write_section

    write_section(Path(args.out), saved)
    write_chart(Path(args.chart), saved)
    print(f"wrote {args.out} and {args.chart}")


def measure_round(
    round_no: int, variants: list[str], sink: str, args: argparse.Namespace, log: IO[str]
) -> dict[str, dict[str, Any]]:
    """none, A, none, B, none, ...: each traced variant between two untraced runs, its
    baseline their mean (the load of a shared machine moves within seconds). The traced
    variants' order rotates from round to round."""
    traced = [v for v in variants if v != "none"]
    shift = round_no % len(traced) if traced else 0
    order = traced[shift:] + traced[:shift]
    one: dict[str, dict[str, Any]] = {}
    nones: list[dict[str, Any] | None] = [_run(round_no, "none", sink, args, log)]
    for variant in order:
        result = _run(round_no, variant, sink, args, log)
        nones.append(_run(round_no, "none", sink, args, log))
        around = [r for r in nones[-2:] if r is not None]
        if result is not None and around:
            result["baseline"] = {
                key: statistics.fmean(r[key] for r in around) for key in ("rps", "p50_ms", "p99_ms")
            }
            one[variant] = result
    done = [r for r in nones if r is not None]
    if done:
        one["none"] = {**done[0], **{k: statistics.median(r[k] for r in done) for k in _KEYS}}
    return one


_KEYS = ("rps", "p50_ms", "p99_ms")


def _run(
    round_no: int, variant: str, sink: str, args: argparse.Namespace, log: IO[str]
) -> dict[str, Any] | None:
    try:
        r = run_one(variant, sink, args, log)
    except Exception as exc:  # reported; the other variants go on
        print(f"[round {round_no + 1}] {variant}: ERROR {exc}", flush=True)
        return None
    print(
        f"[round {round_no + 1}] {variant}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
        f"p99 {r['p99_ms']:.2f} ms, sink records {r['sink_records']:,} for "
        f"{r['requests']:,} requests",
        flush=True,
    )
    return r


def asgi(args: argparse.Namespace, cwd: Path) -> dict[str, Any] | None:
    """The in-process driver's result (its own sink), or None if it failed."""
    variants = "none,tracing-middleware,tracing,tracing-flush100" if cwd == ROOT else "none,tracing"
    argv = [PY, "-m", "benchmarks.service.asgi", "--variants", variants]
    argv += ["--rounds", "3" if args.quick else "11", "--requests", "500" if args.quick else "1000"]
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900)
    print(done.stderr.strip().splitlines()[-3:] if done.stderr else "", flush=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make bench-service` installs it (apt-get)")
    variants = [v for v in args.variants.split(",") if v]
    if "none" not in variants:
        variants.insert(0, "none")
    if args.compare:
        variants.insert(1, "tracing@before")
    rounds: list[dict[str, dict[str, Any]]] = []
    log_path = HERE / "_out" / "logs" / "service.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started, load = time.time(), [os.getloadavg()[0]]
    with sink_process() as sink, open(log_path, "a") as log:
        for round_no in range(args.rounds):
            rounds.append(measure_round(round_no, variants, sink, args, log))
            load.append(os.getloadavg()[0])
    return {
        "asgi": asgi(args, ROOT),
        "asgi_before": asgi(args, Path(args.compare)) if args.compare else None,
        "variants": variants,
        "labels": {v: LABELS.get(v, v) for v in variants},
        "rounds": rounds,
        "seconds": args.seconds,
        "connections": args.connections,
        "elapsed_s": time.time() - started,
        "load": load,  # 1-minute load average at the start and after each round
    }


if __name__ == "__main__":
    main()
