"""Driver for ``benchmarks/spool.py``: ``trace()+end()`` with the spool in one mode, or the
replay of a backlog already on disk.

``--variant off|interval|always|never|replay --spool-dir DIR``: ``off`` is
``drive_tracing``'s loop unchanged; the fsync modes add ``spool_dir=DIR`` and
``spool_fsync=MODE``; ``replay`` starts a tracer on ``DIR`` (holding an orphaned backlog of
``--n`` traces) and waits until it has sent them all.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from tracing import AsyncTracing

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


async def body(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    mode = OPTIONS["variant"]
    if mode == "replay":
        return await replay(sink, n, rec)
    if mode == "off":
        return await trace_end(sink, n, rec)
    return await trace_end(sink, n, rec, spool_dir=OPTIONS["spool_dir"], spool_fsync=mode)


if __name__ == "__main__":
    argv = sys.argv
    for flag in ("--variant", "--spool-dir"):
        index = argv.index(flag)
        OPTIONS[flag.lstrip("-").replace("-", "_")] = argv[index + 1]
        if flag == "--spool-dir":
            del argv[index : index + 2]
    main(f"tracing spool {OPTIONS['variant']}", body, asyncio_native=True)
