"""What becomes of a trace that neither memory nor the spool can take (``_client``)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests._helpers import PATIENCE
from tests._server import FaultServer, Reply, check_invariant
from tests.conftest import MakeTracer
from tracing import Trace

REASON = "memory was full and the spool could not take it"


async def test_a_trace_neither_memory_nor_the_spool_takes_is_dropped_and_told(
    server: FaultServer, make_tracer: MakeTracer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """During an outage, with ``max_queue_size`` full and ``spool_max_bytes`` reached,
    a trace is dropped: counted, handed to ``on_error`` and logged, with that reason."""
    server.default = Reply(503)
    told: list[tuple[str, list[str]]] = []
    dropped = threading.Event()  # on_error may run on the spool's writer thread

    def on_error(exc: Exception, failed: Sequence[Trace]) -> None:
        told.append((str(exc), [t.id for t in failed]))
        if str(exc) == f"trace dropped: {REASON}":
            dropped.set()

    tracer = make_tracer(
        spool_dir=tmp_path / "spool",
        spool_max_bytes=2**20,
        max_queue_size=10,
        flush_at=10,
        on_error=on_error,
    )
    for i in range(300):  # 3 MB of traces for 1 MiB of spool and 10 in memory
        tracer.enqueue(Trace("big", id=f"big-{i}", input="x" * 10_000))
    assert await asyncio.to_thread(dropped.wait, 30 * PATIENCE), told
    stats = tracer.stats()
    check_invariant(stats)
    lost = {i for message, ids in told if message == f"trace dropped: {REASON}" for i in ids}
    assert stats.dropped >= len(lost) > 0
    # The first drop is logged at once (later ones within 5 s are summed into the next).
    line = re.search(
        rf"tracing dropped (\d+) trace\(s\): (\d+) because {REASON}$", caplog.text, re.M
    )
    assert line, caplog.text
    assert line[1] == line[2]
    assert 0 < int(line[1]) <= len(lost)
