"""What waits on disk to be read back: adopted parts, and this part's disk-only suffix.

Run by the spool writer's thread only. ``refill()`` moves traces into memory while it has
room, oldest first: adopted parts (older, the oldest part first), then this tracer's own
records that went to disk only while memory was full. It reads at most ``STEP`` records
a cycle, and says when there is more and room for it: the writer then starts its next
cycle (a group of new traces first) at once. Pieces of up to 1,000 records made the
writer's cycles longer and the groups of new traces later (traces coming faster than
they were sent, ``max_queue_size`` 10,000: groups up to 79-97 ms apart, where the
contract says 50; with steps, 56-90 ms, and 1.2x the throughput; benchmarks/RESULTS.md).
``adopt()`` takes every part whose lock is free; a part is deleted once it was read to
the end and every record in it was answered for.

Adopted records fill memory only while it holds fewer than ``ahead`` traces (enough for
the sender's next batches, and at most half of ``max_queue_size``), so new traces, which
go into memory behind them, are sent alongside the backlog, a few batches later, not
after all of it: with memory full of adopted records (sent at the limiter's rate), new
traces went to disk only and waited behind the whole backlog (an outside review: 1 of 40
new traces sent in 10 s behind a 150,000-trace backlog at 5 requests/s).
"""

from __future__ import annotations

from collections.abc import Callable

from ._log import logger
from ._spool_part import Part, adoptable
from ._spool_queue import SpoolQueue
from ._spool_replay import AdoptedReader, OwnReader

__all__ = ["STEP", "Backlog", "replay_ahead"]

STEP = 250  # records read back per writer cycle (_spool_replay.PIECE bounds a read)
AHEAD_BATCHES = 20  # batches of adopted records memory may hold ahead of new traces


def replay_ahead(max_queue_size: int, flush_at: int) -> int:
    """How many traces memory may hold while adopted records are read into it."""
    return max(1, min(max_queue_size // 2, AHEAD_BATCHES * flush_at))


class Backlog:
    def __init__(
        self,
        spool_dir: str,
        queue: SpoolQueue,
        mine: set[str],
        refilled: Callable[[], None],
        full: bool = False,
        ahead: int | None = None,
    ) -> None:
        self._full = full  # rebuild replayed traces in full (a protocol other than JSON)
        self._ahead = queue.max_size if ahead is None else ahead
        self.capped = False  # adopted records wait for memory to hold fewer than ahead
        self._dir = spool_dir
        self._queue = queue
        self._mine = mine  # parts this tracer wrote before a restart
        self._refilled = refilled
        self._adopted: list[AdoptedReader] = []
        self._own: OwnReader | None = None
        self.corrupt = 0

    def __repr__(self) -> str:
        return (
            f"<Backlog adopted={len(self._adopted)} overflowing={self.overflowing} "
            f"corrupt={self.corrupt}>"
        )

    @property
    def overflowing(self) -> bool:
        """This part has records on disk only, to be read back before any newer one."""
        return self._own is not None

    def overflow_from(self, part: Part, number: int, offset: int) -> None:
        self._own = OwnReader(part, number, offset, self._full)

    def parts(self) -> list[Part]:
        return [reader.part for reader in self._adopted]

    def refill(self) -> bool:
        """Read up to ``STEP`` records back into memory's room; whether room and records
        are left (the writer goes on with its next cycle at once)."""
        start = self._queue.room()
        room = min(start, STEP)
        # Adopted records only up to ``ahead`` traces in memory, new ones behind them.
        behind = min(room, self._ahead - (self._queue.max_size - start))
        for reader in [r for r in self._adopted if not r.done]:  # oldest part first
            if behind <= 0:
                break
            traces = reader.read(behind)
            if traces:
                self._queue.refill(traces, "mine" if reader.part.mine else "adopted")
                room -= len(traces)
                behind -= len(traces)
            if reader.done:
                self._report_corrupt(reader)
                self.drop_finished()
            elif behind > 0:
                break  # a piece at a time, so the thread gets back to writing soon
        own = self._own
        if own is not None and room > 0:
            try:
                traces = own.read(room)
            except OSError as exc:
                logger.warning("tracing spool: cannot read back %s: %s", own.part.path, exc)
                traces = []
            if traces:
                self._queue.refill(traces, "own")
            if own.corrupt:
                self._queue.lost_on_disk(own.corrupt)
                self._report_corrupt(own)
            if own.caught_up():
                self.close_own_reader()
        self._refilled()
        adopted_left = any(not r.done for r in self._adopted)
        self.capped = adopted_left and behind <= 0
        left = self._own is not None or adopted_left
        return left and room <= 0 and start > STEP

    def _report_corrupt(self, reader: AdoptedReader | OwnReader) -> None:
        count, reader.corrupt = reader.corrupt, 0
        if count:
            self.corrupt += count
            logger.warning(
                "tracing spool: skipped %d damaged record(s) in %s; the rest is delivered",
                count,
                reader.part.path,
            )

    def drop_finished(self) -> None:
        """Delete adopted parts fully read whose every record was answered for."""
        for reader in list(self._adopted):
            if reader.done and not reader.part.segments:
                reader.close()
                reader.part.release(remove=True)
                self._adopted.remove(reader)

    def adopt(self, own: str) -> None:
        skip = {r.part.name for r in self._adopted} | {own}
        try:
            parts = adoptable(self._dir, skip)
        except OSError as exc:
            logger.warning("tracing spool: cannot look for orphaned parts: %s", exc)
            return
        for part in parts:
            part.mine = part.name in self._mine
            if part.segments:
                logger.info("tracing spool: replaying %s (%d bytes)", part.path, part.bytes)
            self._adopted.append(AdoptedReader(part, self._full))
        self.drop_finished()

    def close_own_reader(self) -> None:
        if self._own is not None:
            self._own.close()
            self._own = None

    def release_all(self) -> None:
        """Shutdown: close every adopted part; delete those fully replayed."""
        for reader in self._adopted:
            reader.close()
            reader.part.release(remove=reader.done and not reader.part.segments)
        self._adopted = []
