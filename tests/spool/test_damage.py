"""A damaged spool: torn tails, flipped bits, lost or damaged acknowledgements. The SDK
skips and counts what is damaged and delivers the rest."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from tests._server import FaultServer, Reply
from tests.spool._child import spool_files
from tests.spool.conftest import MakeSpooled, wait_stats
from tracing import Trace
from tracing._spool_format import HEADER, SegmentReader


async def spool_some(make_spooled: MakeSpooled, server: FaultServer, count: int) -> list[str]:
    """A tracer that cannot deliver shuts down and leaves ``count`` traces on disk."""
    server.default = Reply(503)
    tracer = make_spooled()
    ids = []
    for index in range(count):
        trace = Trace("damaged", id=f"d-{index}", input="z" * 40)
        assert tracer.enqueue(trace)
        ids.append(trace.id)
    stats = await tracer.shutdown(timeout=5)
    assert stats.spooled == count
    server.default = Reply(200)
    return ids


def record_bounds(path: Path) -> list[tuple[int, int]]:
    reader = SegmentReader(str(path))
    bounds = [(r.offset, r.end) for r in reader.read(10_000)]
    reader.close()
    return bounds


async def replay(make_spooled: MakeSpooled, server: FaultServer, expect: int) -> set[str]:
    before = len(server.requests)
    tracer = make_spooled()
    await tracer.start()
    await wait_stats(tracer, lambda s: s.sent >= expect)
    await tracer.shutdown(timeout=5)
    return {i for r in server.requests[before:] for i in r.accepted}


async def test_torn_tail_at_every_byte_of_the_last_record(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path, tmp_path: Path, caplog
) -> None:
    """The last record cut at every offset: the records before it read back (a real file at
    each offset), the cut one counted once; replayed end to end at the boundary offsets."""
    ids = await spool_some(make_spooled, server, 6)
    (segment,) = spool_files(spool_dir)
    data = segment.read_bytes()
    start, end = record_bounds(segment)[-1]
    assert end == len(data)
    probe = tmp_path / "probe.seg"
    for cut in range(end - start):
        probe.write_bytes(data[: start + cut])
        reader = SegmentReader(str(probe))
        records = reader.read(100)
        assert [r.trace_id for r in records] == ids[:5], cut
        assert reader.corrupt == (1 if cut else 0), cut
    template = tmp_path / "template"
    shutil.copytree(spool_dir, template)
    for cut in sorted(
        {1, HEADER.size - 1, HEADER.size, HEADER.size + 3, (end - start) // 2, end - start - 1}
    ):
        shutil.rmtree(spool_dir)
        shutil.copytree(template, spool_dir)
        (copy,) = spool_files(spool_dir)
        with copy.open("r+b") as file:
            file.truncate(start + cut)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tracing"):
            delivered = await replay(make_spooled, server, 5)
        assert ids[:5] == sorted(delivered), cut
        assert "skipped 1 damaged record(s)" in caplog.text, cut


async def test_flipped_bit_mid_file_skips_one_record(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path, caplog
) -> None:
    """A bit flipped inside a record in the middle: that record is counted as damaged, every
    later one is still delivered."""
    ids = await spool_some(make_spooled, server, 20)
    (segment,) = spool_files(spool_dir)
    start, end = record_bounds(segment)[10]
    data = bytearray(segment.read_bytes())
    data[(start + end) // 2] ^= 0x04
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="tracing"):
        delivered = await replay(make_spooled, server, 19)
    assert delivered == set(ids) - {ids[10]}
    assert "skipped 1 damaged record(s)" in caplog.text


@pytest.mark.parametrize("damage", ["missing", "flipped", "torn"])
async def test_lost_or_damaged_acks_only_resend(
    server: FaultServer, make_spooled: MakeSpooled, spool_dir: Path, damage: str
) -> None:
    """The ack file removed, with a flipped bit, or cut mid-entry: nothing is lost; answered
    traces may be sent again (the collector stores a trace id once). Three flushes make
    three ack entries (one run of 10 records each): damage to one resends only its run."""
    tracer = make_spooled(flush_interval=0)
    for chunk in range(3):
        for i in range(10):
            tracer.enqueue(Trace("acked", id=f"a-{chunk}-{i}"))
        await tracer.flush()  # its sync also writes the acks of the chunk before
    server.default = Reply(503)
    left = [Trace("left", id=f"l-{i}") for i in range(30)]
    for trace in left:
        tracer.enqueue(trace)
    stats = await tracer.shutdown(timeout=5)
    assert (stats.sent, stats.spooled) == (30, 30)
    (ack,) = spool_files(spool_dir, ".ack")
    assert ack.stat().st_size == 3 * 16
    if damage == "missing":
        ack.unlink()
    elif damage == "flipped":
        data = bytearray(ack.read_bytes())
        data[16 + 3] ^= 0x01
        ack.write_bytes(bytes(data))
    else:
        with ack.open("r+b") as file:
            file.truncate(3 * 16 - 5)
    server.default = Reply(200)
    before = len(server.requests)
    again = make_spooled()
    await again.start()
    resent = {"missing": 30, "flipped": 10, "torn": 10}[damage]
    await wait_stats(again, lambda s: s.sent >= 30 + resent)
    replayed = [i for r in server.requests[before:] for i in r.accepted]
    assert {t.id for t in left} <= set(replayed)
    assert len(replayed) == 30 + resent
