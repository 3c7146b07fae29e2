"""The spool's on-disk format: framed records with a CRC each, and acknowledgement entries.

A segment file (``<n>.seg``) is a run of records, appended and never rewritten::

    magic b"\\xf7\\x1e" | body length u32 | crc32 u32 | seq u64 | id length u16 | id | json

(little-endian). The CRC covers everything after itself, the JSON first: it is
``crc32(seq | id length | id, crc32(json))``, so the JSON's part can be computed when the
trace is encoded, while its bytes are still in the CPU's caches, before its ``seq`` is
known. ``seq`` numbers the records of a part, in write order. The JSON is the trace
exactly as it is posted. The magic's first byte never occurs in UTF-8, so it never occurs
in a payload: after a damaged record, the reader finds the next one by scanning for the
magic and checking that record's CRC.

An acknowledgement file (``<n>.ack``) holds 16-byte entries, ``first seq u64 | count u32 |
crc32 u32`` (the CRC covers the first 12 bytes), each a run of consecutive records of
segment ``n`` the server answered for (a batch is usually one run). A damaged or missing
entry only means those records are sent again (the collector stores a trace id once),
never that one is lost.

The writer frames a whole group in one pass (``frame_group``): per record two small
``pack`` calls and a ``crc32`` of the few header bytes (of the JSON too, when it was not
computed before), and the payload bytes are not copied (the header and the payload are
separate pieces for ``os.writev``).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable

import attrs

__all__ = [
    "HEADER",
    "Record",
    "SegmentReader",
    "encode_acks",
    "encode_record",
    "frame_group",
    "read_acks",
]

MAGIC = b"\xf7\x1e"
HEADER = struct.Struct("<2sIIQH")  # magic, body length, crc32, seq, id length
_TAIL = struct.Struct("<QH")  # seq, id length: the header's part under the CRC
_ACK = struct.Struct("<QII")  # first seq, count, crc32 of the first 12 bytes
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


def encode_record(seq: int, trace_id: str, payload: bytes) -> bytes:
    """One framed record."""
    pieces, _ = frame_group(seq, [trace_id], [payload], [None], len(payload) + 2**17)
    return b"".join(pieces)


def frame_group(
    seq: int,
    ids: Iterable[str],
    payloads: Iterable[bytes],
    crcs: Iterable[int | None],
    budget: int,
) -> tuple[list[bytes], list[int]]:
    """Frame consecutive records numbered from ``seq``, stopping before the first that
    would take the total past ``budget`` bytes. ``crcs``: each payload's ``crc32``, or
    None where it is still to be computed.

    Returns the pieces to write in order (per record: its header with the id, then the
    payload itself, uncopied) and each record's size in bytes.
    """
    header, tail, crc32 = HEADER.pack, _TAIL.pack, zlib.crc32
    pieces: list[bytes] = []
    sizes: list[int] = []
    add, add_size = pieces.append, sizes.append
    for trace_id, payload, crc in zip(ids, payloads, crcs, strict=True):
        ident = trace_id.encode("utf-8", "replace")
        if len(ident) > 65535:
            ident = ident[:65535]
        count = len(ident)
        body = count + len(payload)
        if body + HEADER.size > budget:
            break
        budget -= body + HEADER.size
        if crc is None:
            crc = crc32(payload)
        # crc32(seq | id length | id, crc) in two calls, without joining those bytes.
        crc = crc32(ident, crc32(tail(seq, count), crc))
        add(header(MAGIC, body, crc, seq, count) + ident)
        add(payload)
        add_size(body + HEADER.size)
        seq += 1
    return pieces, sizes


def encode_acks(seqs: Iterable[int]) -> bytes:
    """Ack entries for ``seqs`` (in any order): one per run of consecutive seqs."""
    entries: list[bytes] = []
    first = last = -2
    for seq in sorted(seqs):
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
        magic, length, crc, seq, id_len = HEADER.unpack_from(self._buf, at)
        if magic != MAGIC or length > MAX_BODY or id_len > length:
            return None
        end = pos + HEADER.size + length
        if not self._fill(end):
            return False
        at = pos - self._base  # the fill may have dropped consumed bytes
        lead = self._buf[at + 10 : at + HEADER.size + id_len]  # seq | id length | id
        payload = self._buf[at + HEADER.size + id_len : at + HEADER.size + length]
        if zlib.crc32(lead, zlib.crc32(payload)) != crc:
            return None
        trace_id = lead[10:].decode("utf-8", "replace")
        return Record(seq, trace_id, payload, pos, end)

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
