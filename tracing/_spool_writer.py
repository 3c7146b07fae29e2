"""The spool writer: one daemon thread that does every disk operation of a spool.

Every ``PERIOD`` seconds (or when asked: ``flush()``, ``shutdown()``) it takes the queue's
inbox with the records the event loop already framed for its runs of traces, and appends
those bytes as they are (``writev()``, several runs per call; a run is split at a record
where a segment or ``spool_max_bytes`` ends), without reading a trace. What the loop did
not frame (a trickle, traces queued from another thread or taken before the loop reached
them) it encodes (``_spool_encode``: the bytes the POST reuses) and frames itself
(``frame_group``). It syncs with ``spool_fsync="always"`` before any record counts as
written, and places the traces (see ``_spool_queue``). Then it writes the
acknowledgements the flusher collected, deletes segments whose every record was answered
for, reads disk-only and adopted records back a step at a time while memory has room,
syncs about once a second with ``"interval"``, and looks for orphaned parts every few
seconds.

A busy event loop would starve this thread of the GIL for seconds; the loop lends it
(``_spool_gil``) whenever the thread has wanted it for more than 5 ms.

An ``OSError`` (full disk, EIO, a read-only or vanished directory) never leaves this
thread: the group goes to memory, one warning is logged, and writing is tried again after
a pause, from a fresh segment. Any other exception is logged and the cycle carries on.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Sequence

from ._config import Config
from ._log import logger
from ._models import Trace
from ._spool_append import Appender
from ._spool_backlog import Backlog, replay_ahead
from ._spool_format import ACK_SIZE
from ._spool_gil import Lender
from ._spool_lost import deleted, mark_gone
from ._spool_part import Part, acks_by_segment, create_part, split_ref
from ._spool_queue import Framed, Ref, SpoolQueue
from ._spool_sync import Syncer

__all__ = ["SpoolWriter"]

PERIOD = 0.02  # seconds between groups: well inside the 50 ms the contract allows
SYNC_INTERVAL = 1.0  # spool_fsync="interval"
SCAN_INTERVAL = 2.0  # looking for orphaned parts
ACK_INTERVAL = 0.1  # writing acknowledgements, unless asked (a late one only means a resend)
RECORD_GUESS = 512  # bytes a record is taken to need until the writer has written some
RECORD_MIN = 64  # the smallest record size the room is counted in
RETRY_FIRST, RETRY_MAX = 0.5, 5.0  # after a disk error

Dropped = Callable[[Sequence[Trace]], None]


class SpoolWriter(Appender):
    """The thread, its part, the adopted parts and the disk-health state."""

    def __init__(
        self, config: Config, queue: SpoolQueue, poke: Callable[[], None], dropped: Dropped
    ) -> None:
        assert config.spool_dir is not None
        self._dir = config.spool_dir
        self._max_bytes = config.spool_max_bytes
        # A 16th of the bound (4 KiB-16 MiB): a segment kept for a few records holds little.
        self._segment_max = max(4096, min(16 * 2**20, config.spool_max_bytes // 16))
        self._fsync = config.spool_fsync
        self._full = config.protocol != "tracing"  # OTLP encodes from the fields
        self._flush_at = config.flush_at
        self._queue = queue
        self._poke = poke
        self._dropped = dropped
        self._mine: set[str] = set()  # parts this tracer wrote, before a restart
        self.lender = Lender()  # the loop lends this thread the GIL when it is starved
        queue.lender = self.lender
        self._reset()

    def _reset(self) -> None:
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[concurrent.futures.Future[None]] = []
        self._closing = False
        self._own: Part | None = None
        self._backlog = Backlog(
            self._dir,
            self._queue,
            self._mine,
            self._after_refill,
            self._full,
            replay_ahead(self._queue.max_size, self._flush_at),
        )
        self._healthy = True
        self._retry_at = 0.0
        self._retry_delay = RETRY_FIRST
        self._next_scan = 0.0
        self._next_acks = 0.0
        self._record_size = RECORD_GUESS  # the last group's records' size, an eighth more
        self._full_warned = False  # the spool-full warning was given (_note_full)
        self._queue.disk_slots = self._max_bytes // (RECORD_GUESS + ACK_SIZE)
        self._syncer = Syncer()  # also what was written since the last sync

    def __repr__(self) -> str:
        return (
            f"<SpoolWriter {self._dir} running={self.running} healthy={self._healthy} "
            f"own={self._own!r} {self._backlog!r}>"
        )

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # Control (any thread) ---------------------------------------------------------------

    def ensure_started(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._closing = False
            self._thread = threading.Thread(
                target=self._run, name="tracing-spool-writer", daemon=True
            )
            self._thread.start()
        self._queue.on_put = None

    def request(self, *, close: bool = False) -> concurrent.futures.Future[None]:
        """A future done after the writer's next full cycle (and its closing, if asked)."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            if close:
                self._closing = True
            if self._thread is None or not self._thread.is_alive():
                future.set_result(None)
                return future
            self._waiters.append(future)
        self._wake.set()
        return future

    def after_fork(self) -> None:
        """In a forked child: close the parent's descriptors (never unlocking), start over."""
        for part in [self._own, *self._backlog.parts()]:
            if part is not None:
                part.forget_after_fork()
        self._mine = set()
        self.lender.disarm()
        self._reset()

    # The thread -------------------------------------------------------------------------

    def _run(self) -> None:
        due = time.monotonic() + PERIOD
        lender = self.lender
        while True:
            lender.wants = due  # the GIL from then on (see _spool_gil)
            # Groups start every PERIOD, not PERIOD after the last one ended: each wait
            # for the GIL after a system call (the wake-up, the write) can take the
            # interpreter's switch interval (5 ms) while the event loop is busy. A cycle
            # asked for early (flush(), shutdown()) leaves the schedule as it was.
            self._wake.wait(max(due - time.monotonic(), 0.0))
            self._wake.clear()
            now = lender.wants = time.monotonic()
            if now >= due:
                due = due + PERIOD if due + PERIOD > now else now + PERIOD
            with self._lock:
                waiters, self._waiters = self._waiters, []
                closing = self._closing
            try:
                # Asked (flush(), sync, shutdown): the whole inbox, encoded or not.
                self._cycle(closing, whole=closing or bool(waiters))
                if closing:
                    self._finish()
            except Exception:  # a bug: keep the thread (and the traces) going
                logger.exception("tracing spool writer failed; carrying on")
            if closing:
                with self._lock:
                    # Gone before anyone hears it is closed: a start() right after the
                    # shutdown gets a new thread, never this ending one.
                    self._thread = None
                    self._queue.on_put = self.ensure_started
                    waiters += self._waiters
                    self._waiters = []
            for future in waiters:
                if not future.done():
                    future.set_result(None)
            if closing:
                lender.disarm()
                return

    def _cycle(self, closing: bool, whole: bool = True) -> None:
        now = time.monotonic()
        if self._own is None and self._healthy_at(now):
            self._open()
        group, framed = self._queue.take_framed(whole)
        if group:
            self._place(group, framed, closing)
            if self._queue.backlogged():
                self._wake.set()  # a capped group: the next one at once
        if whole or now >= self._next_acks:
            self._next_acks = now + ACK_INTERVAL
            self._write_acks()
            self.lender.wants = time.monotonic()
        if not closing and self._queue.refilling and self._backlog.refill():
            self._wake.set()  # more to read back: the next cycle (its group first) at once
        # Adopted records wait for memory to empty below the backlog's share: each answer
        # from the server wakes the next cycle, not the next period (20 ms).
        self._queue.on_answer = self._wake.set if self._backlog.capped else None
        if self._fsync == "interval" and self._syncer.due(now, SYNC_INTERVAL):
            self._syncer.sync_soon(self._own.path if self._own is not None else None)
        if not closing and self._own is not None and now >= self._next_scan:
            self._next_scan = now + SCAN_INTERVAL
            if deleted(self._own):  # a system call: each one a wait for the GIL, so not
                self._lost_part(self._own)  # every cycle
                self._open()  # the next part now, so the room below is counted in it
            else:
                self._backlog.adopt(self._own.name)
        self._queue.disk_slots = self._disk_slots(now)

    def _after_refill(self) -> None:
        if len(self._queue) >= self._flush_at:
            self._poke()

    def _healthy_at(self, now: float) -> bool:
        return self._healthy or now >= self._retry_at

    def _disk_slots(self, now: float) -> int:
        """How many more records the own part has room for, at the size of the last group's
        records (an eighth more, as the next ones may be larger); 0 while it cannot be
        written."""
        own = self._own
        if own is None or not self._healthy_at(now):
            return 0
        return max(self._room(own), 0) // (self._record_size + ACK_SIZE)

    def _writable(self, now: float) -> bool:
        own = self._own
        return own is not None and self._room(own) > 0 and self._healthy_at(now)

    def _failed(self, what: str, exc: OSError) -> None:
        """One warning when the disk starts failing; retry later, pausing longer each time."""
        if self._healthy:
            logger.warning(
                "tracing spool: cannot %s in %s (%s); traces are kept in memory until "
                "the spool can be written again",
                what,
                self._dir,
                exc,
            )
            self._retry_delay = RETRY_FIRST
        else:
            self._retry_delay = min(self._retry_delay * 2, RETRY_MAX)
        self._healthy = False
        self._retry_at = time.monotonic() + self._retry_delay

    def _recovered(self) -> None:
        if not self._healthy:
            self._healthy = True
            logger.warning("tracing spool: writing to %s again", self._dir)

    def _lost_part(self, own: Part) -> None:
        """The own part was deleted under the writer (see ``_spool_lost``): what it held
        on disk only is lost, and the next part is made now."""
        lost = self._queue.spooled_own
        mark_gone(own)
        self._backlog.close_own_reader()
        self._syncer.dirty = {path for path in self._syncer.dirty if not path.startswith(own.path)}
        own.release(remove=False)
        self._own = None
        self._mine.discard(own.name)
        if lost:
            self._queue.lost_on_disk(lost)
        logger.warning(
            "tracing spool: %s was deleted while in use; %d trace(s) kept there on disk only "
            "are lost, queued ones are sent from memory, and a new part is made",
            own.path,
            lost,
        )

    def _open(self) -> None:
        try:
            self._own = create_part(self._dir, sync=self._fsync != "never")
        except OSError as exc:
            self._failed("create its directory", exc)
            return
        self._own.unlink = self._syncer.unlink
        self._recovered()
        self._mine.add(self._own.name)
        self._next_scan = 0.0

    # Writing ----------------------------------------------------------------------------

    def _place(self, group: list[Trace], framed: list[Framed], closing: bool) -> None:
        refs: list[Ref | None] = [None] * len(group)
        offsets: list[int] = [0] * len(group)
        if self._writable(time.monotonic()):
            try:
                self._write(group, framed, refs, offsets)
            except Exception:
                logger.exception("tracing spool writer failed to write a group")
            self._note_full(refs)
        overflowing = self._backlog.overflowing
        # Closing: the sender is done, so what is written stays on disk only (spooled).
        first, dropped = self._queue.place(group, refs, overflowing or closing)
        if not overflowing and first < len(group):
            ref = refs[first]
            assert ref is not None
            part, number, _ = split_ref(ref)
            assert part is not None
            self._backlog.overflow_from(part, number, offsets[first])
        if dropped:
            self._dropped(dropped)
        if len(self._queue) >= self._flush_at:
            self._poke()

    def _note_full(self, refs: list[Ref | None]) -> None:
        """One warning when ``spool_max_bytes`` first leaves traces without a record (they
        are kept in memory only, and a kill loses them); again after the spool had room."""
        unwritten = refs.count(None)
        if unwritten and self._healthy and not self._full_warned:
            self._full_warned = True
            logger.warning(
                "tracing spool: %s reached spool_max_bytes; %d trace(s) (and the next ones "
                "until it has room) are kept in memory only, where a crash loses them",
                self._dir,
                unwritten,
            )
        elif not unwritten:
            self._full_warned = False

    def _write(
        self,
        group: list[Trace],
        framed: list[Framed],
        refs: list[Ref | None],
        offsets: list[int],
    ) -> None:
        """Append the group's records; fill ``refs``/``offsets`` for those written.
        ``framed``: the records the loop made of the group's first traces, appended as
        they are; the rest are encoded (if the loop did not) and framed here."""
        part = self._own
        assert part is not None
        before = part.bytes
        try:
            done = self._write_framed(part, framed, refs, offsets) if framed else 0
            if done < len(group):
                self._write_records(part, group, done, refs, offsets)
        except OSError as exc:
            with contextlib.suppress(OSError):
                part.seal_current()
            self._failed("write", exc)
            return
        written = len(refs) - refs.count(None)
        if written:
            self._record_size = max((part.bytes - before) // written * 9 // 8, RECORD_MIN)
            self._recovered()

    def _write_acks(self) -> None:
        acks = self._queue.take_acks()
        if not acks:
            return
        for part, number, seqs in acks_by_segment(acks):
            if part.closed:
                continue
            try:
                part.write_acks(number, seqs)
            except OSError as exc:  # only duplicates later: the record is sent again
                self._failed("write acknowledgements", exc)
                continue
            if self._fsync != "never" and number in part.segments:
                self._syncer.dirty.add(part.ack_path(number))
        self._backlog.drop_finished()

    # Closing ----------------------------------------------------------------------------

    def _finish(self) -> None:
        """Last cycle of a shutdown: sync, release the parts (deleting empty ones)."""
        if self._fsync != "never":
            self._syncer.sync_now(self._own.path if self._own is not None else None)
        self._syncer.stop()  # its deletions done before the part is released
        own, self._own = self._own, None
        self._backlog.close_own_reader()
        if own is not None:
            own.unlink = None  # from here on deleted at once, by this thread
            with contextlib.suppress(OSError):
                own.seal_current()
            empty = not own.segments
            own.release(remove=empty)
            if empty:
                self._mine.discard(own.name)
        self._backlog.release_all()
        self._syncer.dirty.clear()
