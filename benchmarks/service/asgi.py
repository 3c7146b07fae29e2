"""The service's cost per request without sockets: each variant called straight through ASGI.

    python -m benchmarks.service.asgi                      # none vs tracing, 7 rounds
    python -m benchmarks.service.asgi --variants none,tracing,otel
    python -m benchmarks.service.asgi --profile tracing    # cProfile of the traced blocks
    py-spy record -o flame.svg -- python -m benchmarks.service.asgi --variants tracing

The apps (``benchmarks/service/app.py``) run in this process, their lifespans too, and
send to the loopback sink (its own process). Each round times a block of ``--requests``
sequential requests per variant, then the variant's flush, so the background work
(encoding, HTTP to the sink) is inside the block: the added time is everything tracing
costs the process. Variants alternate within a round, the order rotating; the report is
the per-round difference to ``none`` in CPU time (and wall time), its median
and range. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import statistics
import sys
import time
from typing import Any

from benchmarks.run import sink_process
from benchmarks.service.app import build

_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/items/42",
    "raw_path": b"/items/42",
    "query_string": b"currency=EUR",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"bench")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


class Lifespan:
    """Runs an ASGI app's lifespan protocol, as a server does."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _call(self, message: str) -> None:
        await self.inbox.put({"type": message})
        answer = await self.outbox.get()
        if not answer["type"].endswith(".complete"):
            raise RuntimeError(f"lifespan answered {answer}")

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self._call("lifespan.startup")

    async def shutdown(self) -> None:
        await self._call("lifespan.shutdown")
        if self.task is not None:
            await self.task


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def request(app: Any) -> int:
    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(_SCOPE), _receive, send)
    return status


class GcTimer:
    """Seconds spent in the cyclic GC, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start


GC = GcTimer()


async def block(app: Any, n: int, profiler: cProfile.Profile | None) -> tuple[float, float]:
    """Wall and CPU seconds for n requests plus the flush of what they recorded."""
    gc.collect()
    GC.seconds = 0.0
    if profiler is not None:
        profiler.enable()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        if await request(app) != 200:
            raise RuntimeError("the endpoint did not answer 200")
    await app.state.flush()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    app.state.gc_seconds = getattr(app.state, "gc_seconds", 0.0) + GC.seconds
    if profiler is not None:
        profiler.disable()
    return wall, cpu


async def measure(args: argparse.Namespace, sink: str) -> dict[str, Any]:
    variants = args.variants.split(",")
    if variants[0] != "none":
        variants.insert(0, "none")
    apps = {name: build(name, sink) for name in variants}
    lifespans = {name: Lifespan(app) for name, app in apps.items()}
    for lifespan in lifespans.values():
        await lifespan.startup()
    profiler = cProfile.Profile() if args.profile else None
    per_request: dict[str, list[float]] = {name: [] for name in variants}
    cpu_per_request: dict[str, list[float]] = {name: [] for name in variants}
    for name in variants:  # warm-up: imports, caches, the sink's connections
        await block(apps[name], min(500, args.requests), None)
        apps[name].state.gc_seconds = 0.0
    for round_no in range(args.rounds):
        shift = round_no % len(variants)
        for name in variants[shift:] + variants[:shift]:
            prof = profiler if name == args.profile else None
            wall, cpu = await block(apps[name], args.requests, prof)
            per_request[name].append(wall / args.requests * 1e6)
            cpu_per_request[name].append(cpu / args.requests * 1e6)
    for lifespan in lifespans.values():
        await lifespan.shutdown()
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(args.sort).print_stats(*filter(None, [args.filter]), args.top)
    out = _summary(variants, per_request, cpu_per_request, args)
    for name in variants:  # GC time per request over the timed blocks
        blocks = args.rounds * args.requests
        out[name]["gc_us_per_request"] = apps[name].state.gc_seconds / blocks * 1e6
    return out


def _summary(
    variants: list[str],
    wall: dict[str, list[float]],
    cpu: dict[str, list[float]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Per variant: medians over the rounds, and the same-round difference to ``none``.

    CPU time is the steadier measure on a shared machine (wall time includes the
    moments another process held the core); both are reported.
    """
    out: dict[str, Any] = {"requests_per_block": args.requests, "rounds": args.rounds}
    for name in variants:
        added = [w - base for w, base in zip(wall[name], wall["none"], strict=True)]
        added_cpu = [c - base for c, base in zip(cpu[name], cpu["none"], strict=True)]
        out[name] = {
            "us_per_request": statistics.median(wall[name]),
            "cpu_us_per_request": statistics.median(cpu[name]),
            "added_us": statistics.median(added),
            "added_cpu_us": statistics.median(added_cpu),
            "added_cpu_us_min": min(added_cpu),
            "added_cpu_us_max": max(added_cpu),
            # The least disturbed block of each: steadier than the median when other
            # processes load the machine unevenly.
            "best_cpu_us_per_request": min(cpu[name]),
            "added_best_cpu_us": min(cpu[name]) - min(cpu["none"]),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", default="none,tracing")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", help="the variant whose timed blocks cProfile records")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--filter", help="a regex: profile rows of matching files only")
    args = parser.parse_args()
    with sink_process() as sink:
        result = asyncio.run(measure(args, sink))
    for name, row in result.items():
        if isinstance(row, dict):
            print(
                f"{name:>18}: cpu {row['cpu_us_per_request']:6.1f} us/request, added "
                f"{row['added_cpu_us']:+6.1f} us [{row['added_cpu_us_min']:+.1f} .. "
                f"{row['added_cpu_us_max']:+.1f}], best-block {row['added_best_cpu_us']:+.1f}; "
                f"wall {row['us_per_request']:6.1f} us, "
                f"added {row['added_us']:+.1f}; gc {row['gc_us_per_request']:.1f} us",
                file=sys.stderr,
            )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
