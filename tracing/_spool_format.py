"""The spool's on-disk format: framed records with a CRC each, and acknowledgement entries.

A segment file (``<n>.seg``) is a run of records, appended and never rewritten::

    magic b"\\xf7\\x1e" | json length u32 | crc32 u32 | seq u64 | json

(little-endian). The CRC covers everything after itself, the JSON first: it is
``crc32(seq, crc32(json))``, so the JSON's part can be computed when the trace is
encoded, while its bytes are still in the CPU's caches, before its ``seq`` is known.
``seq`` numbers the records of a part, never twice: the loop's framing and the writer's
draw from one counter, so seqs mostly follow the write order, with gaps. The JSON is the
trace exactly as it is posted; the trace's id is read from it (its first key, ``"id"``).
The magic's first byte never occurs in UTF-8, so it never occurs in a payload: after a
damaged record, the reader finds the next one by scanning for the magic and checking that
record's CRC.

An acknowledgement file (``<n>.ack``) holds 16-byte entries, ``first seq u64 | count u32 |
crc32 u32`` (the CRC covers the first 12 bytes), each a run of consecutive records of
segment ``n`` the server answered for (a batch is usually one run). A damaged or missing
entry only means those records are sent again (the collector stores a trace id once),
never that one is lost.

The event loop frames each run it encoded at once, and the writer what is left
(``frame_group``): per record one ``pack`` of the seq, one ``crc32`` of those 8 bytes and
one ``pack`` of the header, each a ``map`` over the group (a loop in C). The pieces (each
header, then its payload) go to ``os.writev`` as they are from the writer, and joined
into one ``bytes`` per run from the loop (one object for the GC instead of hundreds).
The format of 0.2's first drafts, with the id repeated in the header, was never
released; its files are not read.
"""

from __future__ import annotations

import os
import struct
import zlib
from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate, repeat
from operator import add
from zlib import crc32

import attrs
import orjson

__all__ = [
    "ACK_SIZE",
    "HEADER",
    "Record",
    "SegmentReader",
    "encode_acks",
    "encode_record",
    "frame_group",
    "read_acks",
    "trace_id_of",
]

MAGIC = b"\xf7\x1e"
HEADER = struct.Struct("<2sIIQ")  # magic, json length, crc32, seq
_SEQ = struct.Struct("<Q")  # the header's part under the CRC
_ACK = struct.Struct("<QII")  # first seq, count, crc32 of the first 12 bytes
ACK_SIZE = _ACK.size  # an acknowledgement entry: one run of answered records
_RUN = struct.Struct("<QI")
MAX_BODY = 256 * 2**20  # a length field beyond this is damage, not a record
MAX_RUN = 2**24  # an ack run longer than this is damage (a segment holds far fewer)
_CHUNK = 1 << 20


@attrs.define(slots=True)
class Record:
    seq: int
    trace_id: str
    payload: bytes
    offset: int
    end: int


def encode_record(seq: int, payload: bytes) -> bytes:
    """One framed record."""
    pieces, _ = frame_group(seq, [payload], [None], len(payload) + HEADER.size)
    return b"".join(pieces)


def frame_group(
    seq: int,
    payloads: Iterable[bytes],
    crcs: Iterable[int | None],
    budget: int,
    extra: int = 0,
) -> tuple[list[bytes], list[int]]:
    """Frame consecutive records numbered from ``seq``, stopping before the first that
    would take the total past ``budget`` bytes, each record counted with ``extra`` bytes
    more (room kept for its acknowledgement). ``crcs``: each payload's ``crc32``, or None
    where it is still to be computed.

    Returns the pieces to write in order (per record: its header, then the payload
    itself, uncopied) and each record's size in bytes.
    """
    payloads = list(payloads)
    given = list(crcs)
    if len(given) != len(payloads):
        raise ValueError("frame_group: one crc (or None) per payload")
    known: list[int] = (
        [crc32(p) if c is None else c for p, c in zip(payloads, given, strict=True)]
        if None in given
        else given  # type: ignore[assignment]  # no None in it
    )
    lengths = list(map(len, payloads))
    sizes = list(map(add, lengths, repeat(HEADER.size)))
    costs = map(add, sizes, repeat(extra)) if extra else sizes
    keep = bisect_right(list(accumulate(costs)), budget)
    if keep < len(sizes):
        del payloads[keep:], known[keep:], lengths[keep:], sizes[keep:]
    seqs = range(seq, seq + keep)
    whole = map(crc32, map(_SEQ.pack, seqs), known)  # crc32(seq, crc32(json))
    pieces: list[bytes] = [b""] * (2 * keep)
    pieces[0::2] = map(HEADER.pack, repeat(MAGIC), lengths, whole, seqs)
    pieces[1::2] = payloads
    return pieces, sizes


def trace_id_of(payload: bytes) -> str:
    """The ``"id"`` a record's JSON starts with (orjson writes it first, unescaped for the
    ids this SDK makes); any other JSON is parsed. "" when it has none."""
    if payload.startswith(b'{"id":"'):
        end = payload.find(b'"', 7)
        if end > 0 and b"\\" not in payload[7:end]:
            return payload[7:end].decode("utf-8", "replace")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def encode_acks(seqs: Iterable[int]) -> bytes:
    """Ack entries for ``seqs`` (in any order): one per run of consecutive seqs."""
    ordered = sorted(seqs)
    count = len(ordered)
    if count and ordered[-1] - ordered[0] == count - 1 and len(set(ordered)) == count:
        return _ack(ordered[0], count)  # one run (a whole batch): the usual case
    entries: list[bytes] = []
    first = last = -2
    for seq in ordered:
        if seq == last + 1:
            last = seq
            continue
        if first >= 0:
            entries.append(_ack(first, last - first + 1))
        first = last = seq
    if first >= 0:
        entries.append(_ack(first, last - first + 1))
    return b"".join(entries)


def _ack(first: int, count: int) -> bytes:
    run = _RUN.pack(first, count)
    return run + zlib.crc32(run).to_bytes(4, "little")


def read_acks(data: bytes) -> tuple[set[int], int]:
    """The acknowledged seqs in an ack file's bytes, and how many entries were damaged."""
    acked: set[int] = set()
    damaged = 0
    whole = len(data) - len(data) % _ACK.size
    for offset in range(0, whole, _ACK.size):
        first, count, crc = _ACK.unpack_from(data, offset)
        if count <= MAX_RUN and zlib.crc32(data[offset : offset + _RUN.size]) == crc:
            acked.update(range(first, first + count))
        else:
            damaged += 1
    return acked, damaged + (whole != len(data))


class SegmentReader:
    """Reads the records of one segment file in bounded pieces, skipping damage.

    ``end`` bounds the reading (the writer's position in a segment still being written).
    A record that fails its CRC, or a run of bytes that is no record, counts once in
    ``corrupt`` and is skipped; a record cut short by the end of the file (a torn write)
    counts once and ends the segment.
    """

    def __init__(self, path: str, start: int = 0, end: int | None = None) -> None:
        self.path = path
        self.offset = start  # of the next record to parse
        self.end = end
        self.corrupt = 0
        self.done = False
        self._buf = b""
        self._base = start  # file offset of _buf[0]
        self._fd: int | None = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _fill(self, upto: int) -> bool:
        """Make sure the buffer reaches file offset ``upto``; False at the end."""
        have = self._base + len(self._buf)
        if upto <= have:
            return True
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        limit = self.end
        want = max(upto - have, _CHUNK)
        if limit is not None:
            want = min(want, limit - have)
        # Drop what was consumed, so the buffer stays about one chunk long.
        cut = self.offset - self._base
        if cut > 0:
            self._buf = self._buf[cut:]
            self._base = self.offset
        while want > 0:
            data = os.pread(self._fd, want, self._base + len(self._buf))
            if not data:
                break
            self._buf += data
            want -= len(data)
        return upto <= self._base + len(self._buf)

    def _parse_at(self, pos: int) -> Record | bool | None:
        """The record at ``pos``; None if damaged; False if the file ends inside it."""
        if not self._fill(pos + HEADER.size):
            return False
        at = pos - self._base
        magic, length, crc, seq = HEADER.unpack_from(self._buf, at)
        if magic != MAGIC or length > MAX_BODY:
            return None
        end = pos + HEADER.size + length
        if not self._fill(end):
            return False
        at = pos - self._base  # the fill may have dropped consumed bytes
        payload = self._buf[at + HEADER.size : at + HEADER.size + length]
        if crc32(self._buf[at + 10 : at + HEADER.size], crc32(payload)) != crc:
            return None
        return Record(seq, trace_id_of(payload), payload, pos, end)

    def _resync(self, pos: int) -> int | None:
        """The offset of the next valid record after damage at ``pos``, or None."""
        search = pos + 1
        while True:
            found = self._buf.find(MAGIC, max(search - self._base, 0))
            if found >= 0:
                candidate = self._base + found
                if isinstance(self._parse_at(candidate), Record):
                    return candidate
                search = candidate + 1
                continue
            have = self._base + len(self._buf)
            search = max(search, have - 1)
            self._fill(have + _CHUNK)
            if self._base + len(self._buf) == have:
                return None

    def read(self, max_records: int, max_bytes: int = 4 * 2**20) -> list[Record]:
        """Up to ``max_records`` records (and about ``max_bytes``) from where it stopped."""
        records: list[Record] = []
        size = 0
        while not self.done and len(records) < max_records and size < max_bytes:
            if self.end is not None and self.offset >= self.end:
                self.done = True
                break
            found = self._parse_at(self.offset)
            if isinstance(found, Record):
                records.append(found)
                size += found.end - found.offset
                self.offset = found.end
                continue
            # Damage, or the file ends inside this record (a torn tail, or a damaged
            # length that points past the end): count it once, go on at the next good one.
            if found is None or self._base + len(self._buf) > self.offset:
                self.corrupt += 1
            again = self._resync(self.offset)
            if again is None:
                self.done = True
                break
            self.offset = again
        return records
