"""The writer group's encoding: one orjson call cut into each trace's bytes, the runs of
records framed on the event loop, and a large group written in several ``writev`` calls."""

from __future__ import annotations

import asyncio
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests._server import FaultServer, Reply
from tests.spool._child import spool_files
from tests.spool.conftest import MakeSpooled
from tests.spool.test_spool import read_records
from tracing import Trace
from tracing._spool_encode import CHUNK, encode_group
from tracing._spool_format import (
    HEADER,
    Record,
    SegmentReader,
    encode_record,
    frame_group,
    read_acks,
)
from tracing._spool_queue import ENCODE_AT, GROUP_MAX, PARTIAL_AT, Framed, SpoolQueue
from tracing._wire import encode_trace


def fresh(count: int, **fields: Any) -> list[Trace]:
    return [Trace("enc", id=f"e-{i}", input=f'in {i} \u00e9\n"q"', **fields) for i in range(count)]


def spans(framed: list[Framed]) -> list[tuple[int, int]]:
    return [(position, count) for position, count, *_ in framed]


def assert_records(taken: list[Trace], framed: list[Framed]) -> None:
    """Each run holds, byte for byte, the records framing each of its traces alone."""
    for position, count, seq, data, sizes in framed:
        run = taken[position : position + count]
        alone = [encode_record(seq + i, t._wire or b"") for i, t in enumerate(run)]
        assert data == b"".join(alone)
        assert list(sizes) == [len(record) for record in alone]


def test_group_bytes_equal_each_traces_own_encoding() -> None:
    """More than one chunk: each part is byte for byte what encode_trace makes alone."""
    group = fresh(CHUNK * 2 + 7, metadata={"k": [1, {"id": "x"}], "s": "\x00,"})
    parts = encode_group(group)
    assert [t._wire for t in group] == parts
    for trace in group:
        trace._wire = None
    assert parts == [encode_trace(trace) for trace in group]
    assert all(orjson.loads(p or b"")["id"] == t.id for p, t in zip(parts, group, strict=True))


def test_a_mark_in_user_data_falls_back_to_one_by_one() -> None:
    """A user's Fragment holding the cut mark splits the group once too often: each trace
    is then encoded alone, and every part is still that trace's whole JSON."""
    group = fresh(5)
    group[1].metadata = {"f": orjson.Fragment(b'"a",' + b"\x00" * 30 + b',"b"')}
    parts = encode_group(group)
    assert b"\x00" * 30 in (parts[1] or b"")  # the user's own raw JSON, kept whole
    for trace in group:
        trace._wire = None
    assert parts == [encode_trace(trace) for trace in group]
    assert [orjson.loads(p or b"")["id"] for i, p in enumerate(parts) if i != 1] == [
        "e-0",
        "e-2",
        "e-3",
        "e-4",
    ]


def test_a_trace_orjson_refuses_or_no_encoder_takes() -> None:
    """An int orjson refuses (the stdlib writes it) and a circular value (nobody can): the
    others are encoded, only the circular one has no bytes (it is not written)."""
    looped: dict[str, object] = {}
    looped["me"] = looped
    group = fresh(5)
    group[2].metadata = {"big": 2**70}
    group[3].metadata = {"loop": looped}
    parts = encode_group(group)
    assert parts[3] is None
    assert orjson.loads(parts[2] or b"")["metadata"] == {"big": 2**70}
    assert [orjson.loads(p)["id"] for i, p in enumerate(parts) if p is not None] == [
        "e-0",
        "e-1",
        "e-2",
        "e-4",
    ]


def test_a_precomputed_crc_is_the_one_checked(tmp_path: Path) -> None:
    """frame_group uses the CRC it is given: a wrong one makes the record fail its check."""
    payloads = [b'{"id":"a"}', b'{"id":"b"}', b'{"id":"c"}']
    crcs = [zlib.crc32(payloads[0]), zlib.crc32(b"something else"), None]
    pieces, sizes = frame_group(7, payloads, crcs, 10**6)
    path = tmp_path / "x.seg"
    path.write_bytes(b"".join(pieces))
    reader = SegmentReader(str(path))
    records = reader.read(10)
    assert [(r.seq, r.trace_id, r.payload) for r in records] == [
        (7, "a", payloads[0]),
        (9, "c", payloads[2]),
    ]
    assert reader.corrupt == 1
    assert sum(sizes) == path.stat().st_size


async def test_the_loop_encodes_and_frames_the_inbox() -> None:
    """A put() that reaches ENCODE_AT unencoded traces schedules the encoding on this loop:
    after one turn of the loop each trace has its bytes, and the writer takes their JSON's
    records with the inbox; place() sets each trace's record place."""
    queue = SpoolQueue(10_000)
    group = fresh(ENCODE_AT + 3)
    for trace in group:
        assert queue.put(trace)
    assert all(t._wire is None for t in group)
    await asyncio.sleep(0)
    # One call (the last 3 put()s found it scheduled), for all that was queued by then.
    assert all(t._wire is not None for t in group)
    assert all(t._spool is None for t in group)
    taken, framed = queue.take_framed()
    assert taken == group
    assert spans(framed) == [(0, len(group))]
    assert_records(taken, framed)
    first, dropped = queue.place(taken, [None] * len(taken), False)
    assert (first, dropped) == (len(group), [])
    assert all(t._spool is None for t in group)


async def test_an_inbox_taken_before_the_loop_encodes_gets_no_run() -> None:
    """The writer took the inbox first: the loop's late call finds nothing to encode and
    sets nothing on traces that are the writer's now (it encodes them itself)."""
    queue = SpoolQueue(10_000)
    group = fresh(ENCODE_AT)
    for trace in group:
        assert queue.put(trace)
    assert queue.take_framed() == (group, [])
    await asyncio.sleep(0)
    assert all(t._wire is None and t._spool is None for t in group)
    assert queue.take_framed() == ([], [])  # the late call left no run for the next inbox
    assert encode_group(group) == [t._wire for t in group]


async def test_runs_of_several_loop_encodings_line_up_with_the_inbox() -> None:
    """Two encodings on the loop, then a tail it never reached: the runs the writer takes
    cover the inbox's first traces, in order, and the tail is in none."""
    queue = SpoolQueue(10_000)
    group = fresh(2 * ENCODE_AT + 5)
    for trace in group[:ENCODE_AT]:
        assert queue.put(trace)
    await asyncio.sleep(0)
    for trace in group[ENCODE_AT:]:
        assert queue.put(trace)
    await asyncio.sleep(0)  # encodes ENCODE_AT + 5 more: all of them
    for trace in fresh(3):
        group.append(trace)
        assert queue.put(trace)  # not encoded: under ENCODE_AT new ones
    taken, framed = queue.take_framed()
    assert taken == group
    assert spans(framed) == [(0, ENCODE_AT), (ENCODE_AT, ENCODE_AT + 5)]
    assert [run[2] for run in framed] == [1, 1 + ENCODE_AT]
    assert_records(taken, framed)
    assert all(t._wire is None for t in group[-3:])


async def test_a_routine_group_leaves_the_unencoded_tail_for_the_next() -> None:
    """Traces coming fast (PARTIAL_AT encoded): a routine take gets the encoded part with
    its runs and leaves the newest, unencoded traces; the next routine take gets those
    even though the loop never reached them (no trace waits more than two groups), and
    every trace is taken once, in order."""
    queue = SpoolQueue(10_000)
    group = fresh(PARTIAL_AT + 5)
    for trace in group:
        assert queue.put(trace)
    await asyncio.sleep(0)  # the loop encodes all of them
    tail = fresh(3)
    for trace in tail:
        assert queue.put(trace)  # under ENCODE_AT new ones: not encoded
    taken, framed = queue.take_framed(whole=False)
    assert taken == group
    assert spans(framed) == [(0, len(group))]
    assert len(queue._inbox) == 3  # counted as queued meanwhile: the invariant holds
    assert queue.snapshot().queue_size == len(group) + len(tail)
    assert queue.take_framed(whole=False) == (tail, [])
    assert all(t._wire is None for t in tail)  # the writer encodes them
    assert queue.take_framed(whole=False) == ([], [])


async def encoded_then_two_more(queue: SpoolQueue, count: int) -> list[Trace]:
    """Queue ``count`` traces, let the loop encode them, then queue two it has not."""
    group = fresh(count)
    for trace in group:
        assert queue.put(trace)
    await asyncio.sleep(0)  # the loop encodes them
    more = fresh(2)
    for trace in more:
        assert queue.put(trace)
    return group + more


async def test_a_small_or_asked_for_group_takes_the_whole_inbox() -> None:
    """Under PARTIAL_AT encoded traces (a slow trickle), or when a flush/shutdown asks
    (whole), the inbox is taken whole, encoded or not: no trace waits an extra group."""
    queue = SpoolQueue(10_000)
    group = await encoded_then_two_more(queue, ENCODE_AT)
    assert queue.take_framed(whole=False)[0] == group
    group = await encoded_then_two_more(queue, PARTIAL_AT)
    taken, framed = queue.take_framed(whole=True)
    assert taken == group
    assert spans(framed) == [(0, PARTIAL_AT)]


async def test_a_large_group_is_written_whole_and_in_order(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """3,000 traces queued without yielding make groups of more than IOV_MAX pieces:
    every record is on disk once, in order, with a good CRC, and holds the posted JSON."""
    server.default = Reply(503)
    tracer = make_spooled(max_queue_size=5000, flush_interval=0)
    group = fresh(3000)
    for trace in group:
        assert tracer.enqueue(trace)
    stats = await tracer.shutdown(timeout=5)
    assert stats.spooled == 3000
    records = read_records(spool_dir)
    assert list(records) == [t.id for t in group]
    assert all(orjson.loads(records[t.id])["input"] == t.input for t in group)


async def test_a_routine_group_is_capped_and_the_rest_goes_next_at_once() -> None:
    """A burst larger than GROUP_MAX: a routine take gets GROUP_MAX traces with their own
    records, the writer is told to go on at once (backlogged), and the next takes get the
    rest, in order, each trace once in a record of its own bytes. A take asked for by
    flush() or shutdown() (whole) is never capped."""
    queue = SpoolQueue(3 * GROUP_MAX)
    group = fresh(GROUP_MAX + ENCODE_AT + 7)
    for trace in group:
        assert queue.put(trace)
    await asyncio.sleep(0)  # the loop encodes them all
    assert queue.backlogged()
    first, framed = queue.take_framed(whole=False)
    assert first == group[:GROUP_MAX]
    assert spans(framed) == [(0, GROUP_MAX)]
    assert_records(first, framed)
    assert not queue.backlogged()
    rest, framed = queue.take_framed(whole=False)
    assert rest == group[GROUP_MAX:]
    assert spans(framed) == [(0, len(rest))]
    assert_records(rest, framed)
    assert queue.snapshot().queue_size == len(group)  # held for the writer: still counted
    more = fresh(GROUP_MAX + 1)
    for trace in more:
        assert queue.put(trace)
    assert queue.take_framed(whole=True)[0] == more


async def test_the_loop_frames_each_encoded_run_as_records() -> None:
    """The loop's encoding also frames its run: the writer takes records byte for byte
    what framing each trace alone makes, numbered from one counter that the writer's own
    framing draws from next (seqs never repeat within a part)."""
    queue = SpoolQueue(10_000)
    first = fresh(ENCODE_AT + 3)
    for trace in first:
        assert queue.put(trace)
    await asyncio.sleep(0)
    second = fresh(ENCODE_AT)
    for trace in second:
        assert queue.put(trace)
    await asyncio.sleep(0)
    taken, framed = queue.take_framed()
    assert taken == first + second
    assert [run[:3] for run in framed] == [
        (0, len(first), 1),
        (len(first), len(second), 1 + len(first)),
    ]
    assert_records(taken, framed)
    assert queue.draw_seqs(5) == 1 + len(first) + len(second)
    assert queue.draw_seqs(1) == 6 + len(first) + len(second)


async def test_a_run_cut_by_a_take_is_split_between_the_takes() -> None:
    """A run cut by a capped take (GROUP_MAX) is split at the cut: the first take gets its
    first GROUP_MAX records, the next take the rest, renumbered from the group's start,
    and together they are the run's bytes, each record once."""
    queue = SpoolQueue(3 * GROUP_MAX)
    group = fresh(GROUP_MAX + 7)
    for trace in group:
        assert queue.put(trace)
    await asyncio.sleep(0)  # one encoding, one run, for all of them
    assert [run[:3] for run in queue._framed] == [(0, len(group), 1)]
    whole = queue._framed[0][3]
    taken, framed = queue.take_framed(whole=False)
    assert len(taken) == GROUP_MAX
    assert [run[:3] for run in framed] == [(0, GROUP_MAX, 1)]
    assert_records(taken, framed)
    head = framed[0][3]
    taken, framed = queue.take_framed(whole=False)
    assert taken == group[GROUP_MAX:]
    assert [run[:3] for run in framed] == [(0, 7, 1 + GROUP_MAX)]
    assert_records(taken, framed)
    assert head + framed[0][3] == whole


async def test_framed_runs_and_the_writers_own_records_share_a_part(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """Runs the loop framed, then a tail it never reached (framed by the writer), written
    with the backend down: every trace is on disk once, in order, each record's seq
    unique, its CRC good and its JSON the trace's own bytes."""
    server.default = Reply(503)
    tracer = make_spooled(max_queue_size=5000, flush_interval=0)
    group = fresh(3 * ENCODE_AT + 3)
    for index, trace in enumerate(group):
        assert tracer.enqueue(trace)
        if index % ENCODE_AT == ENCODE_AT - 1:
            await asyncio.sleep(0)  # the loop encodes and frames this run
    assert tracer._queue._framed  # type: ignore[attr-defined]
    stats = await tracer.shutdown(timeout=5)
    assert stats.spooled == len(group)
    found: list[Record] = []
    for path in spool_files(spool_dir):
        reader = SegmentReader(str(path))
        while not reader.done:
            found.extend(reader.read(1000))
        assert reader.corrupt == 0
        reader.close()
    assert [r.trace_id for r in found] == [t.id for t in group]
    assert len({r.seq for r in found}) == len(found)
    assert [r.payload for r in found] == [t._wire for t in group]


async def test_a_framed_run_larger_than_a_segment_is_split_across_segments(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """With a small spool_max_bytes a segment (16 KiB) holds a few records only: a run the
    loop framed does not fit one, so it is split at records across segments, keeping
    the loop's records (their seqs) as they are, each on disk once and in order."""
    server.default = Reply(503)
    tracer = make_spooled(max_queue_size=5000, flush_interval=0, spool_max_bytes=64 * 2**20 // 256)
    group = fresh(ENCODE_AT + 1)
    for trace in group:
        assert tracer.enqueue(trace)
    await asyncio.sleep(0)
    assert [run[:2] for run in tracer._queue._framed] == [(0, len(group))]  # type: ignore[attr-defined]
    stats = await tracer.shutdown(timeout=5)
    assert stats.spooled == len(group)
    assert list(read_records(spool_dir)) == [t.id for t in group]
    assert len(spool_files(spool_dir)) > 1
    found: list[Record] = []
    for path in spool_files(spool_dir):
        reader = SegmentReader(str(path))
        found.extend(reader.read(10_000))
        assert reader.corrupt == 0
        reader.close()
    assert [r.seq for r in found] == list(range(1, len(group) + 1))  # the loop's own
    assert [r.payload for r in found] == [t._wire for t in group]


async def test_a_framed_run_past_spool_max_bytes_is_cut_at_the_bound(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path
) -> None:
    """spool_max_bytes reached inside a run the loop framed: the run's first records are
    written as they are (the loop's seqs) while they and their acknowledgements' room fit
    the bound; the rest have no record, so a shutdown with the backend down keeps only the
    written ones on disk."""
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    group = [
        Trace("b", id=f"b-{i:03d}", input="x" * 500, start_time=start, end_time=end)
        for i in range(ENCODE_AT + 1)
    ]
    record = HEADER.size + len(encode_trace(group[0]))
    for trace in group:
        trace._wire = None
    server.default = Reply(503)
    tracer = make_spooled(max_queue_size=5000, flush_interval=0, spool_max_bytes=12 * record)
    for trace in group:
        assert tracer.enqueue(trace)
    await asyncio.sleep(0)
    assert [run[:2] for run in tracer._queue._framed] == [(0, len(group))]  # type: ignore[attr-defined]
    stats = await tracer.shutdown(timeout=5)
    assert stats.spooled == 11  # the twelfth's room is kept for the acknowledgements
    found: list[Record] = []
    for path in spool_files(spool_dir):
        reader = SegmentReader(str(path))
        found.extend(reader.read(10_000))
        reader.close()
    assert [(r.seq, r.trace_id) for r in found] == [(i + 1, group[i].id) for i in range(11)]


@pytest.mark.parametrize("framed_by", ["loop", "writer"])
async def test_the_acks_name_the_records_own_seqs(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path, framed_by: str
) -> None:
    """Records framed by the loop (runs of ENCODE_AT or more) or by the writer (fewer),
    delivered: the acknowledgements the writer then appends name exactly the seqs of the
    records on disk (a wrong one would resend a trace after a crash, and lose the ack of
    another)."""
    tracer = make_spooled(max_queue_size=5000, flush_interval=0)
    group = fresh(2 * ENCODE_AT + 3 if framed_by == "loop" else ENCODE_AT // 2)
    for index, trace in enumerate(group):
        assert tracer.enqueue(trace)
        if index % ENCODE_AT == ENCODE_AT - 1:
            await asyncio.sleep(0)
    assert bool(tracer._queue._framed) == (framed_by == "loop")  # type: ignore[attr-defined]
    await tracer.flush()
    assert tracer.stats().sent == len(group)
    await tracer.flush()  # the writer's next cycle appends the acknowledgements
    seqs: list[int] = []
    for path in spool_files(spool_dir):
        reader = SegmentReader(str(path))
        seqs.extend(r.seq for r in reader.read(10_000))
        reader.close()
    acked: set[int] = set()
    for path in spool_files(spool_dir, ".ack"):
        got, damaged = read_acks(path.read_bytes())
        assert damaged == 0
        acked |= got
    assert len(seqs) == len(group)
    assert acked == set(seqs)
