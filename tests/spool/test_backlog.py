"""A large backlog is replayed in bounded pieces: the replaying process's memory stays far
below the backlog's size (the 1 GB figure is in benchmarks/spool.py), and each writer
cycle reads one step of it back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from tests._server import FaultServer, Reply
from tests.spool._backlog import write_backlog
from tests.spool._child import Child, check_counts, spool_files
from tests.spool.conftest import MakeSpooled
from tracing import Trace
from tracing._spool_backlog import STEP, Backlog, replay_ahead
from tracing._spool_format import encode_record
from tracing._spool_queue import SpoolQueue
from tracing._spool_replay import NO_ID

COUNT = 60_000


@pytest.mark.timeout(300)
async def test_large_backlog_replays_with_bounded_memory(
    server: FaultServer, tmp_path: Path
) -> None:
    """60k orphaned traces (~64 MB): all delivered once; peak RSS grows by far less."""
    spool_dir = tmp_path / "spool"
    size = await asyncio.to_thread(write_backlog, spool_dir, COUNT)
    server.default = Reply(200, results=False)
    child = await Child(
        server.url, spool_dir, {"max_queue_size": 1000, "flush_at": 100, "flush_interval": 0.01}
    ).start()
    start_kb = child.ready["maxrss_kb"]
    await server.wait_for_traces(COUNT, timeout=120)
    final = await child.ask("shutdown", timeout=10)
    assert await child.finish() == 0
    check_counts(final)
    assert final["replayed"] == final["sent"] == COUNT
    ids = server.accepted_ids()
    assert len(ids) == len(set(ids)) == COUNT
    grown = (final["maxrss_kb"] - start_kb) * 1024
    assert grown < size / 3, (grown, size)
    assert not spool_files(spool_dir)


def test_a_backlog_is_read_back_a_step_at_a_time(tmp_path: Path) -> None:
    """Each refill (one per writer cycle) reads at most STEP records back and says when
    there is more and room for it, so the writer starts its next cycle (its group of new
    traces first) at once; it says nothing more when memory's room was the limit, or when
    the backlog is read. Every record arrives once, in order."""
    spool_dir = tmp_path / "spool"
    write_backlog(spool_dir, 2 * STEP + 10, size=10)
    queue = SpoolQueue(10_000)
    backlog = Backlog(str(spool_dir), queue, set(), lambda: None)
    backlog.adopt("none of these")
    try:
        assert len(queue) == 0
        assert backlog.refill() is True
        assert len(queue) == STEP
        assert backlog.refill() is True
        assert backlog.refill() is False  # the last 10: nothing left
        assert len(queue) == 2 * STEP + 10
        assert [t.id for t in queue.take(10_000)] == [f"b-{i}" for i in range(1, 2 * STEP + 11)]
        assert backlog.refill() is False
    finally:
        backlog.release_all()


def test_a_refill_limited_by_memory_does_not_ask_for_more_at_once(tmp_path: Path) -> None:
    """Memory has room for fewer than STEP traces: the refill fills it and does not ask
    for the next cycle at once (the flusher makes room first)."""
    spool_dir = tmp_path / "spool"
    write_backlog(spool_dir, 2 * STEP, size=10)
    queue = SpoolQueue(STEP // 2)
    backlog = Backlog(str(spool_dir), queue, set(), lambda: None)
    backlog.adopt("none of these")
    try:
        assert backlog.refill() is False
        assert len(queue) == STEP // 2
    finally:
        backlog.release_all()


def test_a_record_without_an_id_is_read_back_with_the_rest(tmp_path: Path) -> None:
    """A record whose JSON has no "id" (good CRC; not one this SDK writes) comes back as
    a stub under a placeholder id with its bytes as stored, in its place: the read-back
    neither fails nor skips the records read with it."""
    part = tmp_path / "spool" / "p-0000000000000001-000000noid"
    part.mkdir(parents=True, mode=0o700)
    (part / "lock").touch(mode=0o600)
    payloads = [orjson.dumps({"id": "r-1", "name": "n"}), b'{"name":"no id"}']
    payloads.append(orjson.dumps({"id": "r-3", "name": "n"}))
    (part / "00000001.seg").write_bytes(
        b"".join(encode_record(seq, p) for seq, p in enumerate(payloads, 1))
    )
    queue = SpoolQueue(100)
    backlog = Backlog(str(tmp_path / "spool"), queue, set(), lambda: None)
    backlog.adopt("none of these")
    try:
        assert len(queue) == 0
        assert backlog.refill() is False
        traces = queue.take(10)
        assert [t.id for t in traces] == ["r-1", NO_ID, "r-3"]
        assert [t._wire for t in traces] == payloads
        assert queue.snapshot().replayed == 3
    finally:
        backlog.release_all()


def test_adopted_records_fill_memory_only_up_to_ahead(tmp_path: Path) -> None:
    """Records of an adopted part are read into memory only while it holds fewer than
    ``ahead`` traces, whatever its room: what is queued behind them is sent a few batches
    later, not after the whole backlog. Sending makes room for as many again."""
    spool_dir = tmp_path / "spool"
    write_backlog(spool_dir, 4 * STEP, size=10)
    queue = SpoolQueue(10_000)
    ahead = STEP + 50
    backlog = Backlog(str(spool_dir), queue, set(), lambda: None, ahead=ahead)
    backlog.adopt("none of these")
    try:
        assert len(queue) == 0
        backlog.refill()
        assert len(queue) == STEP
        assert backlog.refill() is False  # capped: no cycle at once
        assert len(queue) == ahead
        backlog.refill()
        assert len(queue) == ahead
        sent = queue.take(100)
        queue.settle(sent=len(sent))
        backlog.refill()
        assert len(queue) == ahead
        assert [t.id for t in sent] == [f"b-{i}" for i in range(1, 101)]
    finally:
        backlog.release_all()
    assert replay_ahead(10_000, 100) == 2_000  # 20 batches
    assert replay_ahead(1_000, 100) == 500  # half of memory
    assert replay_ahead(1, 1) == 1


async def test_new_traces_go_alongside_an_adopted_backlog(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """A tracer that adopts a 4,000-trace backlog and sends 100 traces a second (the
    limiter) sends the traces enqueued after its start a few batches later, while most of
    the backlog still waits on disk, not after all of it (40 s here)."""
    await asyncio.to_thread(write_backlog, spool_dir, 4_000, 100)
    server.default = Reply(200)
    tracer = make_spooled(flush_at=10, max_batch_size=10, rate_limit=10, max_concurrency=1)
    await tracer.start()
    await server.wait_for_traces(1)  # the replay has begun
    new = [Trace("new", id=f"new-{i}") for i in range(5)]
    assert all(tracer.enqueue(trace) for trace in new)
    await server.wait_until(lambda: {t.id for t in new} <= set(server.accepted_ids()), timeout=20)
    backlog_sent = [i for i in server.accepted_ids() if i.startswith("b-")]
    assert len(backlog_sent) < 2_000, len(backlog_sent)
    assert backlog_sent == [f"b-{i}" for i in range(1, len(backlog_sent) + 1)]  # oldest first
