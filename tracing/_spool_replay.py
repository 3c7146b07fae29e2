"""Reading a spool back into memory, oldest first, in bounded pieces.

Two sources, both read by the spool writer's thread when memory has room: parts adopted
from tracers that died or shut down with traces left (whole parts, skipping what their
``.ack`` files say was answered), and this tracer's own records that went to disk only
while memory was full (a suffix of its part, from a cursor up to where writing is).
A piece is at most ``PIECE`` records and a few MiB, so a backlog of any size costs one
piece of memory, plus the traces memory holds anyway (``max_queue_size``).
"""

from __future__ import annotations

import contextlib

from ._log import logger
from ._models import ReadBack, Trace
from ._spool_decode import trace_from_wire
from ._spool_format import Record, SegmentReader
from ._spool_part import Part, Segment, ref_base
from ._spool_queue import Ref
from ._spool_stub import stub_of

__all__ = ["NO_ID", "PIECE", "AdoptedReader", "OwnReader", "stub_trace"]

PIECE = 1000
NO_ID = "(no id in the spool record)"  # a stub's id when its record's JSON has none


def stub_trace(record: Record, ref: Ref, full: bool = False) -> Trace:
    """A trace read back from disk: its id and its wire bytes, sent as they were written.

    With the JSON protocol only the id is read and the JSON is posted unchanged: the
    trace is an ``Encoded`` (``_spool_stub``), as a live one once framed, and ``on_error``
    gets it rebuilt from its JSON (a replayed trace the collector rejects). With OTLP the
    trace is rebuilt in full now, as that protocol encodes from the fields.
    """
    trace = None
    if full:  # a protocol that encodes from the fields (OTLP) needs them back
        try:
            trace = trace_from_wire(record.payload)
        except Exception:  # sent as stored by the JSON path never needs this
            trace = None
    if trace is None:
        # A record without an "id" (not one this SDK writes) still comes back, under a
        # placeholder: an empty id would fail the whole step of the read-back.
        return stub_of(record.trace_id or NO_ID, record.payload, ReadBack(ref))
    trace._wire = record.payload
    trace._ended = trace._queued = True
    trace._spool = ReadBack(ref)
    return trace


class AdoptedReader:
    """Reads one adopted part, segment by segment, skipping acknowledged records."""

    def __init__(self, part: Part, full: bool = False) -> None:
        self.part = part
        self.full = full
        self._order = sorted(part.segments)
        self._segment: Segment | None = None
        self._reader: SegmentReader | None = None
        self._acked: set[int] = set()
        self.corrupt = 0

    @property
    def done(self) -> bool:
        return not self._order and self._reader is None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _next_segment(self) -> bool:
        while self._order:
            number = self._order.pop(0)
            segment = self.part.segments.get(number)
            if segment is None:
                continue
            self._acked, damaged = self.part.load_acks(number)
            if damaged:
                logger.warning(
                    "tracing spool: %d damaged acknowledgement(s) in %s; those records "
                    "may be sent again (the collector stores each trace once)",
                    damaged,
                    self.part.path,
                )
            self._segment = segment
            self._reader = self.part.reader(number)
            return True
        return False

    def read(self, limit: int) -> list[Trace]:
        """Up to ``limit`` unacknowledged traces, oldest first."""
        traces: list[Trace] = []
        while len(traces) < limit:
            if self._reader is None and not self._next_segment():
                break
            reader, segment = self._reader, self._segment
            assert reader is not None
            assert segment is not None
            try:
                records = reader.read(limit - len(traces))
            except OSError as exc:  # unreadable file: what was read stands
                logger.warning("tracing spool: cannot read %s: %s", reader.path, exc)
                reader.done = True
                records = []
            part = self.part
            base = ref_base(part, segment.number)
            for record in records:
                if record.seq in self._acked:
                    continue
                segment.outstanding += 1
                traces.append(stub_trace(record, base | record.seq, self.full))
            if reader.done:
                self.corrupt += reader.corrupt
                reader.close()
                self._reader = None
                segment.sealed = True
                if segment.outstanding <= 0:
                    with contextlib.suppress(OSError):
                        part.delete_segment(segment)
        return traces


class OwnReader:
    """Reads this tracer's disk-only records back, from ``start`` up to the write end."""

    def __init__(self, part: Part, number: int, offset: int, full: bool = False) -> None:
        self.part = part
        self.full = full
        self.number = number
        self.offset = offset
        self._reader: SegmentReader | None = None
        self.corrupt = 0

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def caught_up(self) -> bool:
        """True when every disk-only record was read back (nothing after the cursor)."""
        current = self.part.current
        if current is not None and self.number == current.number:
            return self.offset >= current.size
        return not any(n >= self.number for n in self.part.segments) and current is None

    def read(self, limit: int) -> list[Trace]:
        traces: list[Trace] = []
        part = self.part
        while len(traces) < limit and not self.caught_up():
            segment = part.segments.get(self.number)
            if segment is None:
                self._advance()
                continue
            live = part.current is segment
            end = segment.size
            if self._reader is None:
                self._reader = part.reader(self.number, self.offset, end)
            reader = self._reader
            reader.end = end  # the writer may have appended since
            reader.done = reader.done and not live
            before = reader.corrupt
            records = reader.read(limit - len(traces))
            lost = reader.corrupt - before
            if lost:
                self.corrupt += lost
                segment.outstanding -= lost
            base = ref_base(part, segment.number)
            traces.extend(stub_trace(record, base | record.seq, self.full) for record in records)
            self.offset = reader.offset
            if reader.done and not live:
                self._advance()
            elif not records:
                break
        return traces

    def _advance(self) -> None:
        self.close()
        later = [n for n in self.part.segments if n > self.number]
        if later:
            self.number, self.offset = min(later), 0
        else:
            self.number += 1
            self.offset = 0
