"""The record format read back from real files: pieces across buffer refills, bit flips at
every byte of a record, and a damaged length field."""

from __future__ import annotations

from pathlib import Path

from tracing._spool_format import HEADER, SegmentReader, encode_acks, encode_record, read_acks


def write(path: Path, count: int, size: int) -> list[bytes]:
    records = [encode_record(i, f"id{i}", b'{"x":"%s"}' % (b"y" * size)) for i in range(count)]
    path.write_bytes(b"".join(records))
    return records


def read_all(path: Path, piece: int) -> tuple[list[int], int]:
    reader = SegmentReader(str(path))
    seqs: list[int] = []
    while not reader.done:
        seqs += [r.seq for r in reader.read(piece)]
    reader.close()
    return seqs, reader.corrupt


def test_pieces_across_buffer_refills(tmp_path: Path) -> None:
    """A 3 MiB segment read 7 records at a time: every record, none counted damaged."""
    path = tmp_path / "1.seg"
    write(path, 3000, 1000)
    assert read_all(path, 7) == (list(range(3000)), 0)


def test_a_bit_flip_anywhere_in_a_record_loses_that_record_only(tmp_path: Path) -> None:
    """Flip one bit at each byte of a middle record (header, id, payload): the others read."""
    path = tmp_path / "1.seg"
    records = write(path, 30, 40)
    data = path.read_bytes()
    start = sum(len(r) for r in records[:12])
    for index in range(len(records[12])):
        damaged = bytearray(data)
        damaged[start + index] ^= 0x10
        path.write_bytes(bytes(damaged))
        seqs, corrupt = read_all(path, 100)
        assert seqs == [i for i in range(30) if i != 12], index
        assert corrupt == 1, index


def test_a_huge_length_is_damage_not_a_torn_tail(tmp_path: Path) -> None:
    """A length field pointing far past the end: skipped, the records after it still read."""
    path = tmp_path / "1.seg"
    records = write(path, 10, 40)
    data = bytearray(path.read_bytes())
    start = sum(len(r) for r in records[:4])
    data[start + 2 : start + 6] = (2**31).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert read_all(path, 100) == ([0, 1, 2, 3, 5, 6, 7, 8, 9], 1)
    assert HEADER.size == 20


def test_ack_entries_check_their_crc() -> None:
    """Acks are runs of consecutive seqs, in any order; a damaged entry and a torn last
    entry are counted, never trusted."""
    data = bytearray(encode_acks([8, 1, 2, 3, 5, 7]))
    assert len(data) == 3 * 16  # runs 1-3, 5, 7-8
    assert read_acks(bytes(data)) == ({1, 2, 3, 5, 7, 8}, 0)
    data[16 + 4] ^= 0x01  # the count of the run "5"
    assert read_acks(bytes(data) + b"\x01\x02") == ({1, 2, 3, 7, 8}, 2)
    assert encode_acks([]) == b""
