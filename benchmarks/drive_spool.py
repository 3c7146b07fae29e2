"""Driver for ``benchmarks/spool.py``: ``trace()+end()`` with the spool in one mode, or the
replay of a backlog already on disk.

``--variant off|interval|always|never|replay --spool-dir DIR``: ``off`` is
``drive_tracing``'s loop unchanged; the fsync modes add ``spool_dir=DIR`` and
``spool_fsync=MODE``; ``replay`` starts a tracer on ``DIR`` (holding an orphaned backlog of
``--n`` traces) and waits until it has sent them all.

With the spool on, the start of every writer cycle is recorded (a wrapper around the
writer's ``_cycle``, in this process only), and ``group_gap_ms`` reports the intervals
between cycles that started while traces were being made: how often the inbox was written
with the event loop busy making traces (the README promises at least every 50 ms).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from typing import Any

from tracing import AsyncTracing, _spool_writer

from ._common import Recorder, main
from .drive_tracing import trace_end

OPTIONS: dict[str, str] = {}


async def replay(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    tracer = AsyncTracing(endpoint=sink, spool_dir=OPTIONS["spool_dir"])
    start = time.perf_counter()
    await tracer.start()
    while tracer.stats().sent < n:  # noqa: ASYNC110 (a benchmark polls, nothing to await)
        await asyncio.sleep(0.01)
    end = time.perf_counter()
    stats = await tracer.shutdown()
    return {"start": start, "end": end, "sdk_sent": stats.sent, "replayed": stats.replayed}


CYCLES: list[float] = []


def _record_cycles() -> None:
    cycle = _spool_writer.SpoolWriter._cycle

    def recorded(self: _spool_writer.SpoolWriter, closing: bool, whole: bool = True) -> None:
        CYCLES.append(time.perf_counter())
        cycle(self, closing, whole)

    _spool_writer.SpoolWriter._cycle = recorded  # type: ignore[method-assign]


def _gaps(start: float, end: float) -> dict[str, float | int | None]:
    starts = [t for t in CYCLES if start <= t <= end]
    gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(starts))
    if not gaps:
        return {"p50": None, "p99": None, "max": None, "count": 0}
    return {
        "p50": gaps[len(gaps) // 2],
        "p99": gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))],
        "max": gaps[-1],
        "count": len(gaps),
    }


async def body(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    mode = OPTIONS["variant"]
    if mode == "replay":
        return await replay(sink, n, rec)
    if mode == "off":
        return await trace_end(sink, n, rec)
    _record_cycles()
    result = await trace_end(sink, n, rec, spool_dir=OPTIONS["spool_dir"], spool_fsync=mode)
    # While traces are made: during the flush that follows nothing new arrives, and an
    # empty inbox starts no group (a gap there is the flush's length, not a late write).
    result["group_gap_ms"] = _gaps(result["start"], result["made"])
    return result


if __name__ == "__main__":
    argv = sys.argv
    for flag in ("--variant", "--spool-dir"):
        index = argv.index(flag)
        OPTIONS[flag.lstrip("-").replace("-", "_")] = argv[index + 1]
        if flag == "--spool-dir":
            del argv[index : index + 2]
    main(f"tracing spool {OPTIONS['variant']}", body, asyncio_native=True)
