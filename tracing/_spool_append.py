"""Appending records to the spool writer's own part (``SpoolWriter``'s half that writes).

Runs the event loop framed (one ``bytes`` each) are appended as they are, several per
``writev()``, a run split at a record where the segment or ``spool_max_bytes`` ends; the rest
are encoded and framed here, record by record, into the current segment or a new one
when it is full. Each append is synced with ``spool_fsync="always"`` before any of its
records counts as written. Every method may raise ``OSError``; ``SpoolWriter._write``
catches it.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate, repeat
from operator import add, or_

from ._models import Trace
from ._spool_encode import encode_group
from ._spool_format import ACK_SIZE, frame_group
from ._spool_gil import Lender
from ._spool_part import IOV_MAX, Part, Segment, ref_base, sync_dir
from ._spool_queue import Framed, Ref, SpoolQueue, split_run
from ._spool_sync import Syncer

__all__ = ["Appender"]


class Appender:
    """The writing methods of ``SpoolWriter``, which sets these attributes."""

    _max_bytes: int
    _segment_max: int
    _fsync: str
    _queue: SpoolQueue
    _syncer: Syncer
    lender: Lender

    def _room(self, part: Part) -> int:
        """Bytes left for records under ``spool_max_bytes``, keeping one ack entry's room
        per unanswered record (the worst case), so acks never take the part past it."""
        unanswered = sum(segment.outstanding for segment in part.segments.values())
        return self._max_bytes - part.bytes - ACK_SIZE * unanswered

    def _write_framed(
        self, part: Part, framed: list[Framed], refs: list[Ref | None], offsets: list[int]
    ) -> int:
        """Append the loop's records from the group's start, several runs per ``writev``,
        while they fit the current segment (a new one when it is full) and
        ``spool_max_bytes``; a run that does not fit is split at a record and goes on in
        the next segment. Returns how many of the group's traces they cover; the rest
        (the budget reached, a record larger than a segment) go record by record."""
        room = self._room(part)
        done = index = 0
        framed = list(framed)  # runs are split below
        lengths = [len(run[3]) for run in framed]
        while index < len(framed) and framed[index][0] == done:
            segment = self._segment_for(part, lengths[index])
            stop, size, end = index, segment.size, done
            while stop < len(framed) and stop - index < IOV_MAX:
                position, count = framed[stop][:2]
                length = lengths[stop]
                if position != end:
                    break  # a trace the loop did not frame: the rest record by record
                if size + length > self._segment_max or length + ACK_SIZE * count > room:
                    if stop > index:
                        break  # the next append: a new segment, or the budget then
                    fit = self._fitting(framed[stop][4], self._segment_max - size, room)
                    if fit == 0:
                        break  # a record larger than a segment, or the budget
                    framed[stop : stop + 1] = split_run(framed[stop], fit)
                    lengths[stop : stop + 1] = [len(framed[stop][3]), len(framed[stop + 1][3])]
                    continue
                size += length
                room -= length + ACK_SIZE * count  # each record's ack must fit later too
                end += count
                stop += 1
            if stop == index:
                break
            start, new_file = segment.size, segment.size == 0
            part.append(segment, [run[3] for run in framed[index:stop]])
            self._synced(part, segment, new_file)
            base = ref_base(part, segment.number)
            for (position, count, seq, _, sizes), length in zip(
                framed[index:stop], lengths[index:stop], strict=True
            ):
                refs[position : position + count] = range(base | seq, (base | seq) + count)
                offsets[position : position + count] = accumulate(sizes[:-1], initial=start)
                start += length
            segment.outstanding += end - done
            done, index = end, stop
        return done

    @staticmethod
    def _fitting(sizes: Sequence[int], space: int, room: int) -> int:
        """How many of a run's first records fit ``space`` bytes of the segment and
        ``room`` bytes of the budget (each with its acknowledgement's room)."""
        fit = bisect_right(list(accumulate(sizes)), space)
        costs = list(accumulate(map(add, sizes, repeat(ACK_SIZE))))
        return min(fit, bisect_right(costs, room))

    def _segment_for(self, part: Part, size: int) -> Segment:
        """The segment to append ``size`` bytes to: the current one, or a new one when
        they would take a non-empty current one past the segment size."""
        segment = part.current
        if segment is None or (segment.size and segment.size + size > self._segment_max):
            if segment is not None:
                part.seal_current()
            segment = part.open_segment()
        return segment

    def _synced(self, part: Part, segment: Segment, new_file: bool) -> None:
        """What was just appended to ``segment``, synced with "always" before any of it
        counts as written (and marked for the next sync with "interval")."""
        self.lender.wants = time.monotonic()
        if self._fsync == "always":
            os.fsync(segment.fd)
            if new_file:
                sync_dir(part.path)
            self.lender.wants = time.monotonic()
        elif self._fsync == "interval":
            self._syncer.dirty.add(part.seg_path(segment.number))

    def _write_records(
        self,
        part: Part,
        group: list[Trace],
        done: int,
        refs: list[Ref | None],
        offsets: list[int],
    ) -> None:
        """Encode and frame the group's traces from ``done`` on, and append them."""
        rest = group[done:] if done else group
        payloads = encode_group(rest)
        if None in payloads:  # unencodable: nothing to keep on disk (the exporter reports it)
            index: Sequence[int] = [done + i for i, p in enumerate(payloads) if p is not None]
            payloads = [p for p in payloads if p is not None]
        else:
            index = range(done, len(group))
        seq = self._queue.draw_seqs(len(payloads))
        pieces, sizes = frame_group(
            seq,
            payloads,  # type: ignore[arg-type]  # no None left
            repeat(None, len(payloads)),
            self._room(part),  # spool_max_bytes: the rest goes to memory
            ACK_SIZE,  # each record's acknowledgement must fit later too
        )
        ends = list(accumulate(sizes))
        written = 0
        while written < len(sizes):
            written = self._write_run(part, pieces, sizes, ends, written, seq, index, refs, offsets)

    def _write_run(
        self,
        part: Part,
        pieces: list[bytes],
        sizes: list[int],
        ends: list[int],
        done: int,
        seq: int,
        index: Sequence[int],
        refs: list[Ref | None],
        offsets: list[int],
    ) -> int:
        """Write the framed records from ``done`` on (the first numbered ``seq``) that fit
        the current segment (a new one when it is full). Returns how many records are
        written now."""
        segment = self._segment_for(part, sizes[done])
        before = ends[done - 1] if done else 0
        # A record larger than a whole segment goes alone into a fresh one.
        stop = max(bisect_right(ends, before + self._segment_max - segment.size, done), done + 1)
        start, new_file = segment.size, segment.size == 0
        part.append(segment, pieces[2 * done : 2 * stop])
        self._synced(part, segment, new_file)
        count, number = stop - done, segment.number
        segment.outstanding += count
        run = list(map(or_, repeat(ref_base(part, number)), range(seq + done, seq + stop)))
        places = list(accumulate(sizes[done : stop - 1], initial=start))  # record offsets
        if isinstance(index, range):
            where = index[done:stop]
            refs[where.start : where.stop] = run
            offsets[where.start : where.stop] = places
        else:
            for j, ref, place in zip(index[done:stop], run, places, strict=True):
                refs[j], offsets[j] = ref, place
        return stop
