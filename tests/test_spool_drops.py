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


async def test_enqueue_refuses_a_trace_the_spool_has_no_room_for(
    server: FaultServer, make_tracer: MakeTracer, tmp_path: Path
) -> None:
    """Memory full, and a spool with no room for a record: ``enqueue()`` refuses the trace
    at once (False, counted dropped, ``on_error`` with the spool's reason), as it does
    without a spool; it does not accept the trace and drop it later."""
    server.default = Reply(503)
    told: list[tuple[str, str]] = []
    tracer = make_tracer(
        spool_dir=tmp_path / "spool",
        spool_max_bytes=1,
        max_queue_size=10,
        flush_at=10,
        on_error=lambda exc, traces: told.extend((str(exc), t.id) for t in traces),
    )
    await tracer.start()
    assert tracer.stats().dropped == 0
    accepted = [tracer.enqueue(Trace("small", id=f"small-{i:02d}")) for i in range(50)]
    assert accepted == [True] * 10 + [False] * 40
    stats = tracer.stats()
    check_invariant(stats)
    assert (stats.dropped, stats.spooled) == (40, 0)
    assert told == [(f"trace dropped: {REASON}", f"small-{i:02d}") for i in range(10, 50)]


async def test_a_burst_far_past_memory_waits_on_disk_without_a_drop(
    server: FaultServer, make_tracer: MakeTracer, tmp_path: Path
) -> None:
    """During an outage, a burst of 30,000 traces made without a pause, with room for 100
    in memory: the writer's inbox holds them until they are written (bounded by the
    spool's room, not by a fixed count), so every one is accepted and kept on disk, and
    none is dropped while ``spool_max_bytes`` has room."""
    server.default = Reply(503)
    tracer = make_tracer(spool_dir=tmp_path / "spool", max_queue_size=100, flush_at=100)
    await tracer.start()
    count = 30_000
    assert tracer.stats().enqueued == 0
    accepted = [tracer.enqueue(Trace("burst", id=f"burst-{i:05d}")) for i in range(count)]
    assert accepted.count(True) == count
    stats = await tracer.shutdown(timeout=1)
    check_invariant(stats)
    assert stats.dropped == 0
    assert (stats.enqueued, stats.spooled) == (count, count)


async def test_a_full_spool_warns_that_traces_are_kept_in_memory_only(
    server: FaultServer, make_tracer: MakeTracer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Memory has room but ``spool_max_bytes`` is reached: the traces past it are kept
    in memory only (a crash loses them), and one warning says so, not one per group."""
    server.default = Reply(503)
    tracer = make_tracer(spool_dir=tmp_path / "spool", spool_max_bytes=50_000, flush_at=10_000)
    await tracer.start()
    assert "reached spool_max_bytes" not in caplog.text
    for round_ in range(3):
        for i in range(40):
            assert tracer.enqueue(Trace("big", id=f"big-{round_}-{i}", input="x" * 2_000))
        assert tracer._spool is not None
        await tracer._spool.sync(timeout=30)
    stats = tracer.stats()
    check_invariant(stats)
    assert (stats.queue_size, stats.spooled, stats.dropped) == (120, 0, 0)
    assert caplog.text.count("reached spool_max_bytes") == 1
    assert "are kept in memory only, where a crash loses them" in caplog.text
