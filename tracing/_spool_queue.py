"""The trace queue when a spool backs it: the writer's inbox and the disk-only counters.

``enqueue()`` still only appends to a list under the queue's lock. The spool writer
(``_spool_writer``) takes that inbox every few milliseconds, writes it to disk, and then
*places* each trace: into memory for the flusher (``_items``), on disk only (``spooled``)
when memory is full, or, when the disk cannot take it, into memory without a record, or
dropped when neither has room. A trace is never handed to the flusher before its record is
written (or its write failed), so the disk is a true write-ahead log; and its JSON bytes,
encoded once by the writer, are the bytes the POST sends.

Each trace's ``_spool`` slot says where it is: ``_OVERFLOW`` while it waits in the inbox
counted as spooled (memory was full when it came), a ``Ref`` once written, None otherwise.

The inbox's newest traces are encoded on the event loop, a call soon after each 128 (the
``put()`` that reaches them schedules it): that is where the traces were just made and
are still in the CPU's caches, as the flusher encodes its batches without a spool. The
writer thread, which gets the GIL only every few milliseconds while the loop is busy,
would meet a large group of cold traces: measured, about twice the CPU per trace. The
run is framed there too, as one ``bytes`` of records (``Framed``, seqs from this queue's
counter), so the writer only appends it: every instruction it runs holds the GIL the
loop waits for. A run is one object with its sizes in an ``array``, not lists of
pieces and ints: the garbage collector traverses every young list at each collection,
and those lists (about 2,600 references per collection, each a likely cache miss) made
the young collections take 0.33-0.35 s of a 150,000-trace run, against 0.16-0.19 s with
the spool off and 0.23-0.28 s as now (benchmarks/RESULTS.md, session 10). The writer
encodes and frames whatever is left (no loop, or taken first). With the JSON protocol,
each trace framed is then kept as its bytes only (``_spool_stub``).
All counters change under one lock, so ``snapshot()`` always satisfies
``enqueued + replayed == sent + failed + dropped + queue_size + spooled + in_flight``.
"""

from __future__ import annotations

import asyncio
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter
from zlib import crc32

from ._models import ApiResponse, Trace
from ._queue import TraceQueue
from ._spool_encode import encode_group
from ._spool_format import frame_group
from ._spool_gil import Lender
from ._spool_lost import own_record, record_gone
from ._spool_stub import swap_encoded, swapped

__all__ = ["OVERFLOW", "Framed", "Ref", "SpoolQueue"]

Ref = int  # part slot, segment number and record seq in one int: see _spool_part
OVERFLOW = object()
_SPOOL = attrgetter("_spool")
BURST = 2**20  # traces waiting in the inbox for disk only, at most (a writer that cannot keep up)
DISK_SLOTS = 4096  # traces the disk is taken to have room for until the writer counts it
GROUP_MAX = 4096  # traces in one routine group: a burst is written in several, back to back
ENCODE_AT = 128  # inbox traces not yet encoded that make put() schedule the loop's encoding
PARTIAL_AT = 2 * ENCODE_AT  # encoded inbox traces from which the writer may leave the rest
_UNBOUNDED = 2**62  # frame_group's budget on the loop: the writer applies spool_max_bytes

# A run of inbox traces the loop framed as records: (position of its first trace, how
# many, the seq of the first record, the records themselves (each header, then its
# JSON) in one bytes, each record's size). The writer appends the bytes as they are; in
# a writer's group the position is the group's index.
Framed = tuple[int, int, int, bytes, "array[int]"]


def split_run(run: Framed, count: int) -> tuple[Framed, Framed]:
    """A run cut after its first ``count`` records (a take that ends inside it)."""
    position, total, seq, data, sizes = run
    cut = sum(sizes[:count])
    return (
        (position, count, seq, data[:cut], sizes[:count]),
        (position + count, total - count, seq + count, data[cut:], sizes[count:]),
    )


class SpoolQueue(TraceQueue):
    """A ``TraceQueue`` whose traces pass through the spool writer's inbox."""

    def __init__(self, max_size: int, swap: bool = False) -> None:
        super().__init__(max_size)
        # Whether each trace framed is swapped for its bytes only (``_spool_stub``): in the
        # inbox by the loop's encoding, in the writer's group by place(). The JSON
        # protocol only: it posts those bytes and reads nothing else of a queued trace.
        self._swap = swap
        # Traces accepted for disk only wait in the inbox until the writer's next group or
        # the one after (take_group). What bounds them is the disk's room (disk_slots);
        # this is a last bound on that wait's memory, for a writer that cannot keep up.
        self._burst = max(max_size, BURST)
        self._on_put: Callable[[], None] | None = None
        # Set by the writer while adopted records wait for memory's room: its wake-up.
        self.on_answer: Callable[[], None] | None = None
        self.lender = Lender()  # replaced by the writer's own

    @property
    def on_put(self) -> Callable[[], None] | None:
        """Called by the next put(): the writer's start, once (setting it looks at once)."""
        return self._on_put

    @on_put.setter
    def on_put(self, hook: Callable[[], None] | None) -> None:
        with self._lock:  # set by the writer thread too, while puts count down
            self._on_put = hook
            self._until = 0  # the next put() calls it

    def _reset(self) -> None:
        super()._reset()
        self._until = 0  # puts until the next look at the writer and the encoding
        self._inbox: list[Trace] = []
        self._inbox_spooled = 0  # inbox traces counted as spooled (memory was full)
        # Positions count every trace that ever entered the inbox: inbox[0] is trace
        # number _taken. The loop's encoding has been handed traces up to _encoded, and
        # has finished those up to _ready (framed in _framed unless taken meanwhile).
        self._taken = 0
        self._encoded = 0
        self._ready = 0
        self._framed: list[Framed] = []  # the loop's records of inbox runs, oldest first
        self._seq = 1  # the next record's seq, for the loop's framing and the writer's
        self._encoding = False  # a pre-encoding call is scheduled
        self._stale = 0  # inbox traces the writer left at its last take (they go next)
        self._loop: asyncio.AbstractEventLoop | None = None  # where the encoding runs
        self._acks: list[Ref | None] = []
        self.spooled_own = 0  # of spooled, the records on disk only in this tracer's own part
        # Set by the writer after each group: how many more records the part has room for
        # (spool_max_bytes, at the size of the records it wrote last), 0 while the disk
        # fails. Every inbox trace takes one, so a trace is accepted for disk only while
        # the inbox holds fewer: enqueue() returns False for one the disk cannot take.
        self.disk_slots = DISK_SLOTS
        self.refilling = True  # False once shutdown() begins: the backlog stays on disk

    def __repr__(self) -> str:
        return (
            f"<SpoolQueue queued={len(self._items)} inbox={len(self._inbox)} "
            f"in_flight={self.in_flight} spooled={self.spooled} max={self.max_size}>"
        )

    # The caller's side ----------------------------------------------------------------

    def put(self, trace: Trace) -> bool:
        """Accept a trace into the writer's inbox; False (counted dropped) when neither
        memory nor the spool has room. The lock by ``acquire()``/``release()``, as in
        ``TraceQueue.put``."""
        lock = self._lock
        lock.acquire()
        try:
            self.enqueued += 1
            if len(self._items) + self.in_flight + self._held < self.max_size:
                self._inbox.append(trace)
                self._held += 1
            elif len(self._inbox) < self.disk_slots and self._inbox_spooled < self._burst:
                trace._spool = OVERFLOW
                self._inbox.append(trace)
                self._inbox_spooled += 1
                self.spooled += 1
            else:
                self.dropped += 1
                return False
            until = self._until = self._until - 1
        finally:
            lock.release()
        if until <= 0:
            self._look()
        return True

    def _look(self) -> None:
        """Every so many puts: call ``on_put`` if set (the writer's start, which clears
        it), and schedule the loop's encoding once ``ENCODE_AT`` traces wait unencoded.
        Counting down keeps this out of most puts (~700 of ~4,900 instructions a put)."""
        hook = self._on_put
        if hook is not None:
            hook()
        with self._lock:
            unencoded = self._taken + len(self._inbox) - self._encoded
            schedule = unencoded >= ENCODE_AT and not self._encoding
            # Pending or scheduled now: look again a batch later; else when one is due.
            self._until = ENCODE_AT if schedule or self._encoding else ENCODE_AT - unencoded
        if schedule:
            self._schedule_encoding()

    def _schedule_encoding(self) -> None:
        """Encode the inbox's newest traces soon on this event loop, while they are still
        in the CPU's caches (the writer thread, waiting for the GIL, would meet them
        cold): ~2x less CPU per trace. No loop (a thread, exit): the writer encodes."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._encoding = True
        self._loop = loop
        loop.call_soon(self._encode_inbox)
        self.lender.arm()  # traces come fast: the writer must get the GIL

    def _encode_inbox(self) -> None:
        """Encode the inbox's newest traces and frame them as records (their JSON's CRCs
        taken, seqs drawn here), all while they are in this CPU's caches: the writer thread
        then only appends the bytes, touching no trace (it would meet them cold, and every
        instruction it runs under the GIL is one the loop waits for)."""
        with self._lock:
            self._encoding = False
            start = max(self._encoded, self._taken)
            todo = self._inbox[start - self._taken :]
            self._encoded = self._taken + len(self._inbox)
            seq = self._seq
            self._seq += len(todo)
        parts = encode_group(todo)
        framed: Framed | None = None
        if todo and None not in parts:  # else the writer frames what it can encode
            crcs = map(crc32, parts)  # type: ignore[arg-type]  # no None in it
            pieces, sizes = frame_group(seq, parts, crcs, _UNBOUNDED)  # type: ignore[arg-type]
            framed = (start, len(todo), seq, b"".join(pieces), array("q", sizes))
        end = start + len(todo)
        stubs = swapped(todo) if framed is not None and self._swap else None
        with self._lock:
            self._ready = max(self._ready, end)
            taken = self._taken  # the writer took (and framed) traces before this meanwhile
            if framed is not None and taken < end:
                if taken > start:
                    framed = split_run(framed, taken - start)[1]
                self._framed.append(framed)
                if stubs is not None:  # those still in the inbox: the rest are placed
                    first = max(start, taken)
                    self._inbox[first - taken : end - taken] = stubs[first - start :]

    def draw_seqs(self, count: int) -> int:
        """The first of ``count`` new record seqs (the writer's own framing)."""
        with self._lock:
            seq = self._seq
            self._seq += count
        return seq

    # The flusher's side ---------------------------------------------------------------

    def answered(
        self, delivered: Sequence[Trace], rejected: Sequence[tuple[Trace, ApiResponse]]
    ) -> None:
        with self._lock:
            self.in_flight -= len(delivered) + len(rejected)
            self.sent += len(delivered)
            self.failed += len(rejected)
            # Refs (and None for a trace without a record): the writer drops the Nones.
            self._acks.extend(map(_SPOOL, delivered))
            if rejected:
                self._acks.extend(trace._spool for trace, _ in rejected)
        self.lender.arm()  # the writer writes these acks, and reads the backlog back
        wake = self.on_answer
        if wake is not None:
            wake()

    def give_up(self, traces: Sequence[Trace]) -> list[Trace]:
        lost = [trace for trace in traces if trace._spool is None or record_gone(trace._spool)]
        own = sum(map(own_record, map(_SPOOL, traces)))  # kept in this tracer's part
        with self._lock:
            self.in_flight -= len(traces)
            self.spooled += len(traces) - len(lost)
            self.spooled_own += own
            self.failed += len(lost)
        return lost

    # The writer's side ----------------------------------------------------------------

    def take_inbox(self) -> list[Trace]:
        return self.take_framed()[0]

    def take_framed(self, whole: bool = True) -> tuple[list[Trace], list[Framed]]:
        """The inbox, and the loop's records of its runs (positions in the group; a run
        the take ends inside is cut, its rest left for the next take).

        ``whole=False`` (a routine group): while an event loop encodes the inbox and has
        encoded at least ``PARTIAL_AT`` of it (traces come fast: ~13,000/s or more), only
        the traces it has encoded are taken, with those left at the last take; the rest
        (the newest, fewer than ``ENCODE_AT`` unless the loop is behind) stays for the next
        group, which the loop's next encoding reaches first. So the writer seldom meets
        traces cold (about twice the CPU), and none waits more than two groups; at lower
        rates every group takes the whole inbox, as the CPU matters less than the wait.
        A routine group holds at most ``GROUP_MAX`` traces; the writer takes the next one
        at once (``backlogged``), so a burst is written in bounded steps.
        """
        with self._lock:
            inbox, first = self._inbox, self._taken
            take = max(self._ready - first, self._stale)  # the loop's encoding is done
            partial = not whole and PARTIAL_AT <= take < len(inbox) and self._ask_loop()
            if not partial:
                take = len(inbox)
                self._encoding = False  # a call lost with a closed loop must not stop the next
            if not whole:
                take = min(take, GROUP_MAX)  # bounded work per group; the rest goes next
            if take < len(inbox):
                inbox, self._inbox = inbox[:take], inbox[take:]
            else:
                self._inbox = []
            self._stale = len(self._inbox)
            self.disk_slots -= len(inbox)  # theirs, until the writer counts the room again
            end = self._taken = first + len(inbox)
            framed, self._framed = self._framed, []
            mine: list[Framed] = []
            for run in framed:
                position, count = run[:2]
                if position >= end:
                    self._framed.append(run)
                    continue
                if position + count > end:  # cut: the rest goes with the next take
                    run, rest = split_run(run, end - position)
                    self._framed.append(rest)
                mine.append((position - first, *run[1:]))
            return inbox, mine

    def backlogged(self) -> bool:
        """Whether the inbox holds a whole group more (the writer goes on at once)."""
        return len(self._inbox) >= GROUP_MAX

    def _ask_loop(self) -> bool:
        """Whether an event loop encodes this inbox (under the lock). Only put() schedules
        it (each ``ENCODE_AT`` traces): waking the loop from here would cost the writer
        one more wait for the GIL per group; a tail the loop never reaches goes next."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._loop = None
            return False
        return True

    def take_acks(self) -> list[Ref]:
        with self._lock:
            acks, self._acks = self._acks, []
        return list(filter(None, acks))  # a ref is never 0

    def room(self) -> int:
        """How many more traces memory holds now."""
        with self._lock:
            return self.max_size - len(self._items) - self.in_flight - self._held

    def place(
        self, group: list[Trace], refs: list[Ref | None], disk_only: bool
    ) -> tuple[int, list[Trace]]:
        """Put the writer's group where it belongs, in order.

        ``refs[i]`` is where trace i was written (None: not written). With ``disk_only``
        (the part already has records waiting on disk only), written traces stay on disk
        only, which keeps those records a suffix of the part that is read back in order.

        Returns the index of the first trace left on disk only (``len(group)``: none) and
        the traces dropped (no record, no room).
        """
        if self._swap:  # what the writer encoded itself (the loop's are swapped already)
            group = swap_encoded(group)
        first = len(group)
        dropped: list[Trace] = []
        with self._lock:
            items = self._items
            if (
                not disk_only
                and not self._inbox_spooled
                and len(items) + self.in_flight + self._held <= self.max_size
            ):
                # The usual case: every trace was accepted into memory (none counted as
                # spooled) and memory still holds them all: no per-trace decisions.
                deque(map(setattr, group, repeat("_spool"), refs), maxlen=0)  # a loop in C
                items.extend(group)
                self._held -= len(group)
                return first, dropped
            for index, (trace, ref) in enumerate(zip(group, refs, strict=True)):
                if trace._spool is OVERFLOW:
                    self._inbox_spooled -= 1
                    self.spooled -= 1
                else:
                    self._held -= 1
                trace._spool = ref
                full = len(items) + self.in_flight + self._held >= self.max_size
                if ref is not None and (disk_only or full):
                    disk_only = True
                    first = min(first, index)
                    self.spooled += 1
                    self.spooled_own += 1
                elif not full:
                    items.append(trace)
                else:
                    self.dropped += 1
                    dropped.append(trace)
        return first, dropped

    def refill(self, traces: list[Trace], kind: str) -> None:
        """Traces read back from disk into memory.

        ``kind``: "own" (this part's disk-only records: they were ``spooled``), "mine" (a
        part this tracer wrote before a restart: ``spooled`` too, while it lasts) or
        "adopted" (another tracer's: ``replayed``).
        """
        with self._lock:
            self._items.extend(traces)
            count = len(traces)
            if kind == "adopted":
                self.replayed += count
                return
            if kind == "mine":
                mine = min(count, self.spooled)
                self.replayed += count - mine
                count = mine
            else:
                self.spooled_own -= count
            self.spooled -= count

    def lost_on_disk(self, count: int) -> None:
        """Disk-only records of this part that could not be read back (damaged, deleted)."""
        with self._lock:
            self.spooled -= count
            self.spooled_own -= count
            self.failed += count
