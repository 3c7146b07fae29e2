"""The spool in one process: write-ahead, acknowledgement, restart, overflow, bounds."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests._server import FaultServer, Reply, check_invariant
from tests.spool._child import spool_files
from tests.spool.conftest import MakeSpooled, wait_stats
from tracing import AsyncTracing, Trace
from tracing._spool_format import ACK_SIZE, HEADER, SegmentReader
from tracing._wire import encode_trace


def read_records(spool_dir: Path) -> dict[str, bytes]:
    """Every record on disk, by trace id."""
    found: dict[str, bytes] = {}
    for path in spool_files(spool_dir):
        reader = SegmentReader(str(path))
        while not reader.done:
            found.update((r.trace_id, r.payload) for r in reader.read(1000))
        reader.close()
    return found


def traces(count: int, prefix: str = "t", size: int = 50) -> list[Trace]:
    return [Trace(prefix, id=f"{prefix}-{i}", input="x" * size) for i in range(count)]


async def test_spool_off_touches_no_disk(server: FaultServer, tmp_path: Path, monkeypatch) -> None:
    """Without spool_dir there is no writer thread and no file, and delivery is as in 0.1."""
    monkeypatch.chdir(tmp_path)
    tracer = AsyncTracing(endpoint=server.url, flush_interval=0)
    for trace in traces(30):
        assert tracer.enqueue(trace)
    await tracer.flush()
    stats = await tracer.shutdown()
    assert stats.sent == 30
    assert stats.spooled == stats.replayed == 0
    assert not any(t.name == "tracing-spool-writer" for t in threading.enumerate())
    assert list(tmp_path.iterdir()) == []


async def test_delivered_traces_leave_the_spool(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """Answered traces are acknowledged; a clean shutdown leaves an empty spool_dir (0700)."""
    tracer = make_spooled(flush_interval=0)
    for trace in traces(120):
        assert tracer.enqueue(trace)
    await tracer.flush()
    assert sorted(server.accepted_ids()) == sorted(f"t-{i}" for i in range(120))
    stats = await tracer.shutdown()
    assert (stats.sent, stats.spooled, stats.queue_size) == (120, 0, 0)
    assert spool_dir.stat().st_mode & 0o777 == 0o700
    assert list(spool_dir.iterdir()) == []


async def test_live_batches_keep_random_keys_with_a_spool(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """A live batch's traces are on disk too, yet its Idempotency-Key stays a random
    (version 4) UUID, the same on its retries: only batches read back from disk derive it."""
    server.respond_with(503)  # the first batch to arrive is retried once
    tracer = make_spooled(flush_interval=0, max_batch_size=10, max_retries=1)
    for trace in traces(30):
        assert tracer.enqueue(trace)
    for _ in range(500):  # the writer's next group: every trace on disk
        if len(read_records(spool_dir)) == 30:
            break
        await asyncio.sleep(0.01)
    assert len(read_records(spool_dir)) == 30
    await tracer.flush()
    assert len(server.requests) == 4
    assert sorted(server.accepted_ids()) == sorted(f"t-{i}" for i in range(30))
    keys = [uuid.UUID(r.headers["Idempotency-Key"]) for r in server.requests]
    assert sorted(Counter(keys).values()) == [1, 1, 2]  # the retry reuses its batch's key
    assert {key.version for key in keys} == {4}
    await tracer.shutdown()


async def test_shutdown_during_outage_keeps_traces_and_next_start_sends_them(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path, caplog
) -> None:
    """Backend down at shutdown: traces stay on disk (spooled, logged, not on_error); the next
    tracer replays them with the posted bytes equal to the spooled bytes, keys from ids."""
    server.default = Reply(503)
    errors: list[str] = []
    first = make_spooled(on_error=lambda exc, ts: errors.extend(t.id for t in ts))
    for trace in traces(40):
        assert first.enqueue(trace)
    with caplog.at_level(logging.WARNING, logger="tracing"):
        stats = await first.shutdown(timeout=5)
    assert (stats.spooled, stats.failed, stats.queue_size, stats.in_flight) == (40, 0, 0, 0)
    check_invariant(stats)
    assert errors == []
    assert "kept 40 trace(s) in the spool" in caplog.text
    on_disk = read_records(spool_dir)
    assert sorted(on_disk) == sorted(f"t-{i}" for i in range(40))

    server.default = Reply(200)
    before = len(server.requests)
    second = make_spooled(max_batch_size=10)
    await second.start()
    stats = await wait_stats(second, lambda s: s.sent == 40)
    assert (stats.replayed, stats.enqueued, stats.spooled) == (40, 0, 0)
    replays = server.requests[before:]
    assert sorted(i for r in replays for i in r.accepted) == sorted(on_disk)
    for request in replays:
        posted = [t["id"] for t in request.traces]
        for trace_id in posted:  # the exact bytes written to disk are the bytes posted
            assert on_disk[trace_id] in request.raw
        expected = uuid.uuid5(
            uuid.UUID("1b0e4f0e-5c57-4d52-9a8e-7370ee1d0b52"), "\n".join(sorted(posted))
        )
        assert request.headers["Idempotency-Key"] == str(expected)
    await second.shutdown()
    assert list(spool_dir.iterdir()) == []


async def test_outage_beyond_max_queue_size_loses_nothing(
    server: FaultServer, make_spooled: MakeSpooled
) -> None:
    """Memory full: traces wait on disk only (spooled, not dropped) and are read back in order
    once the backend returns; each is delivered once."""
    server.default = Reply(503)
    tracer = make_spooled(max_queue_size=20, flush_at=5, max_batch_size=5)
    ids = []
    for index, trace in enumerate(traces(400)):
        assert tracer.enqueue(trace)
        ids.append(trace.id)
        check_invariant(tracer.stats())
        if index % 50 == 49:
            await wait_stats(tracer, lambda s: s.queue_size + s.in_flight <= 20)
    stats = await wait_stats(tracer, lambda s: s.spooled >= 380)
    assert stats.dropped == 0
    assert stats.queue_size + stats.in_flight <= 20
    server.default = Reply(200)
    await server.wait_for_traces(400, timeout=60)
    stats = await wait_stats(tracer, lambda s: s.sent == 400)
    assert (stats.spooled, stats.dropped, stats.replayed) == (0, 0, 0)
    accepted = server.accepted_ids()
    assert sorted(accepted) == sorted(ids)


async def test_spool_max_bytes_bounds_the_disk_and_counts_drops(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """With memory and spool_max_bytes both full, traces are dropped, counted and reported;
    the part never grows past the bound; the rest is delivered later."""
    server.default = Reply(503)
    errors: list[str] = []
    tracer = make_spooled(
        max_queue_size=10,
        flush_at=10,
        spool_max_bytes=2**20,
        on_error=lambda exc, ts: errors.extend(t.id for t in ts),
    )
    refused = []
    for index, trace in enumerate(traces(300, size=10_000)):
        if not tracer.enqueue(trace):
            refused.append(trace.id)
        if index % 10 == 9:
            await wait_stats(tracer, lambda s: s.queue_size + s.in_flight <= 10)
    stats = await wait_stats(tracer, lambda s: s.dropped > 0 and s.queue_size <= 10)
    size = sum(p.stat().st_size for p in spool_dir.glob("p-*/*"))
    assert size <= 2**20
    assert set(refused) <= set(errors)
    server.default = Reply(200)
    stats = await wait_stats(tracer, lambda s: s.sent + s.dropped == 300)
    assert stats.dropped == len(errors) > 0
    assert stats.spooled == 0
    assert set(server.accepted_ids()) | set(errors) == {f"t-{i}" for i in range(300)}


async def test_a_small_spool_max_bytes_bounds_records_and_acknowledgements(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """A bound of twelve records (far below one default segment) is accepted and kept,
    acknowledgements included: a record is written only with room left for its
    acknowledgement entry, so the full part keeps that room for every record on it.
    Whatever did not fit is counted, and the rest is delivered."""
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)

    def make(index: int) -> Trace:
        return Trace("s", id=f"s-{index:03d}", input="x" * 1_000, start_time=start, end_time=end)

    batch = [make(i) for i in range(200)]
    record = HEADER.size + len(encode_trace(make(0)))  # every one is this size
    bound = 12 * record
    server.default = Reply(503)
    dropped: list[str] = []
    tracer = make_spooled(
        max_queue_size=10,
        flush_at=10,
        spool_max_bytes=bound,
        on_error=lambda exc, ts: dropped.extend(t.id for t in ts),
    )
    for trace in batch:
        tracer.enqueue(trace)
    assert tracer._spool is not None
    await tracer._spool.sync(timeout=30)  # every trace above written, placed or dropped
    stats = await wait_stats(tracer, lambda s: s.dropped > 0 and s.spooled > 0)
    on_disk = sum(p.stat().st_size for p in spool_dir.glob("p-*/*.seg"))
    assert on_disk % record == 0
    assert on_disk // record == 11  # the twelfth's room is kept for the acknowledgements
    assert on_disk + ACK_SIZE * (on_disk // record) <= bound
    server.default = Reply(200)
    sizes = []
    while (stats := tracer.stats()).sent + stats.dropped < 200:
        sizes.append(sum(p.stat().st_size for p in spool_dir.glob("p-*/*")))
        await asyncio.sleep(0.005)  # samples the files while acknowledgements are written
    assert max(sizes) <= bound
    assert stats.dropped == len(dropped) > 0
    assert set(server.accepted_ids()) | set(dropped) == {t.id for t in batch}
    await tracer.shutdown()


async def test_start_opens_the_part_before_the_first_trace(
    make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """start() returns once the writer has made its part: a burst right after it is
    written in routine groups, not after the part's creation in the middle of it."""
    tracer = make_spooled()
    assert not spool_dir.exists() or not list(spool_dir.glob("p-*"))
    await tracer.start()
    assert len(list(spool_dir.glob("p-*"))) == 1
    assert tracer.stats().enqueued == 0


async def test_drop_warnings_count_every_trace_the_full_spool_refused(
    server: FaultServer,
    make_spooled: MakeSpooled,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Groups the full disk refuses whole are counted trace by trace in the drop warning:
    the counts its lines give add up to ``stats().dropped``."""
    server.default = Reply(503)
    tracer = make_spooled(max_queue_size=10, flush_at=10, spool_max_bytes=2**20)
    with caplog.at_level(logging.WARNING, logger="tracing"):
        for trace in traces(600, size=10_000):  # one go: the writer's groups hold many
            assert tracer.enqueue(trace)
        await wait_stats(tracer, lambda s: s.dropped > 20)
        server.default = Reply(200)
        stats = await tracer.shutdown()
    reason = "because memory was full and the spool could not take it"
    logged = [
        int(count)
        for record in caplog.records
        if record.getMessage().startswith("tracing dropped")
        for count, why in re.findall(r"(\d+) (because [^,]*)", record.getMessage())
        if why == reason
    ]
    assert stats.dropped > 20
    assert sum(logged) == stats.dropped


async def test_a_trace_the_collector_rejects_is_reported_and_acknowledged(
    server: FaultServer, make_spooled: MakeSpooled
) -> None:
    """With a spool, a 400 (not retried) fails the trace as without one: counted, handed
    to on_error, and acknowledged on disk, so no later start sends it again."""
    reported: list[tuple[str, list[str]]] = []
    server.default = Reply(400)
    tracer = make_spooled(on_error=lambda exc, ts: reported.append((str(exc), [t.id for t in ts])))
    assert tracer.enqueue(Trace("t", id="rejected"))
    stats = await tracer.shutdown()
    assert (stats.failed, stats.sent, stats.spooled) == (1, 0, 0)
    assert [ids for _, ids in reported] == [["rejected"]]
    assert "HTTP 400" in reported[0][0]
    server.default = Reply(200)
    again = await make_spooled().shutdown()  # the next start on the same spool_dir
    assert (again.replayed, len(server.batch_requests())) == (0, 1)


@pytest.mark.parametrize("fsync", ["always", "never"])
async def test_every_fsync_mode_delivers(
    server: FaultServer, make_spooled: MakeSpooled, fsync: str
) -> None:
    """spool_fsync "always" and "never" write, deliver and acknowledge alike."""
    tracer = make_spooled(spool_fsync=fsync, flush_interval=0)
    for trace in traces(60):
        assert tracer.enqueue(trace)
    await tracer.flush()
    stats = await tracer.shutdown()
    assert (stats.sent, stats.spooled) == (60, 0)


async def test_restart_in_the_same_process_counts_its_own_traces_once(
    server: FaultServer, make_spooled: MakeSpooled
) -> None:
    """shutdown() during an outage, start() again: the spooled traces come back to memory
    (spooled -> queue_size, not replayed) and are delivered."""
    server.default = Reply(503)
    tracer = make_spooled()
    for trace in traces(25):
        tracer.enqueue(trace)
    stats = await tracer.shutdown(timeout=5)
    assert stats.spooled == 25
    server.default = Reply(200)
    await tracer.start()
    stats = await wait_stats(tracer, lambda s: s.sent == 25)
    assert (stats.enqueued, stats.replayed, stats.spooled) == (25, 0, 0)


async def test_shutdown_with_zero_timeout_leaves_nothing_in_memory(
    server: FaultServer, make_spooled: MakeSpooled
) -> None:
    """shutdown(timeout=0) right after enqueue(): queue_size and in_flight are 0, every trace
    is on disk (spooled) or failed, and the spooled ones come back at the next start."""
    server.default = Reply(503)
    tracer = make_spooled()
    for trace in traces(50):
        assert tracer.enqueue(trace)
    stats = await tracer.shutdown(timeout=0)
    check_invariant(stats)
    assert (stats.queue_size, stats.in_flight) == (0, 0)
    assert stats.spooled + stats.failed == 50
    server.default = Reply(200)
    again = make_spooled()
    await again.start()
    await wait_stats(again, lambda s: s.sent == stats.spooled)


async def test_otlp_replay_sends_the_traces_as_they_were(
    server: FaultServer, spool_dir: Path
) -> None:
    """With protocol="otlp", traces left on disk are rebuilt from their JSON and replayed
    to /v1/traces with their names, inputs and spans."""
    from tests._otlp import attributes, decode_request, spans_of

    server.default = Reply(503)
    first = AsyncTracing(endpoint=server.url, spool_dir=spool_dir, protocol="otlp", max_retries=0)
    trace = Trace("otlp-spooled", id="0123456789abcdef0123456789abcdef", input="hello")
    trace.span("child").end(output="done")
    assert first.enqueue(trace)
    stats = await first.shutdown(timeout=5)
    assert stats.spooled == 1
    server.default = Reply(200)
    before = len(server.requests)
    second = AsyncTracing(endpoint=server.url, spool_dir=spool_dir, protocol="otlp")
    await second.start()
    stats = await wait_stats(second, lambda s: s.sent == 1)
    assert stats.replayed == 1
    await second.shutdown()
    (request,) = server.requests[before:]
    assert request.path == "/v1/traces"
    spans = {span.name: span for span in spans_of(decode_request(request.raw))}
    assert set(spans) == {"otlp-spooled", "child"}
    assert spans["otlp-spooled"].trace_id.hex() == trace.id
    assert attributes(spans["otlp-spooled"])["input.value"] == "hello"
    assert attributes(spans["child"])["output.value"] == "done"


async def test_groups_keep_their_schedule_after_many_asked_for_early(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """300 cycles asked for early (each flush() waits for one) leave the writer's 20 ms
    schedule as it was: a trace enqueued afterwards is written by a routine group, with
    nobody asking (had each early cycle pushed the schedule back, it would wait 6 s)."""
    server.default = Reply(503)  # nothing is answered for: the record stays on disk
    tracer = make_spooled()
    await tracer.start()
    for _ in range(300):
        await tracer.flush()
    assert tracer.enqueue(Trace("late", id="late-0"))
    async with asyncio.timeout(3):
        while "late-0" not in read_records(spool_dir):  # noqa: ASYNC110 (polls the disk)
            await asyncio.sleep(0.01)
