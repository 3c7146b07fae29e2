"""The record format read back from real files: pieces across buffer refills, bit flips at
every byte of a record, and a damaged length field."""

from __future__ import annotations

from pathlib import Path

import orjson

from tracing._spool_format import (
    HEADER,
    SegmentReader,
    encode_acks,
    encode_record,
    read_acks,
    trace_id_of,
)
from tracing._spool_part import acks_by_segment, create_part, ref_base, split_ref


def write(path: Path, count: int, size: int) -> list[bytes]:
    records = [encode_record(i, b'{"id":"id%d","x":"%s"}' % (i, b"y" * size)) for i in range(count)]
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
    """Flip one bit at each byte of a middle record (header, seq, JSON): the others read."""
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
    assert HEADER.size == 18


def test_ack_entries_check_their_crc() -> None:
    """Acks are runs of consecutive seqs, in any order; a damaged entry and a torn last
    entry are counted, never trusted."""
    data = bytearray(encode_acks([8, 1, 2, 3, 5, 7]))
    assert len(data) == 3 * 16  # runs 1-3, 5, 7-8
    assert read_acks(bytes(data)) == ({1, 2, 3, 5, 7, 8}, 0)
    data[16 + 4] ^= 0x01  # the count of the run "5"
    assert read_acks(bytes(data) + b"\x01\x02") == ({1, 2, 3, 7, 8}, 2)
    assert encode_acks([]) == b""


def test_a_records_id_is_read_from_its_json(tmp_path: Path) -> None:
    """The header holds no id: the reader takes it from the JSON, escaped ids included."""
    odd = 'a"b\\c\u00e9'
    payloads = [b'{"id":"plain","x":1}', orjson.dumps({"id": odd, "x": 2}), b'{"x":3,"id":"late"}']
    path = tmp_path / "1.seg"
    path.write_bytes(b"".join(encode_record(seq, p) for seq, p in enumerate(payloads)))
    records = SegmentReader(str(path)).read(10)
    assert [(r.seq, r.trace_id, r.payload) for r in records] == [
        (0, "plain", payloads[0]),
        (1, odd, payloads[1]),
        (2, "late", payloads[2]),
    ]
    assert [trace_id_of(b"[1]"), trace_id_of(b'{"id":7}'), trace_id_of(b"{")] == ["", "", ""]


def test_a_whole_batch_is_one_ack_entry() -> None:
    """Consecutive seqs in any order make one entry; a duplicate or a gap does not."""
    one = encode_acks([12, 10, 11, 13])
    assert len(one) == 16
    assert read_acks(one) == ({10, 11, 12, 13}, 0)
    for seqs in ([10, 10, 12], [10, 12, 11, 11], [3, 5]):  # span == count - 1 or not: runs
        data = encode_acks(seqs)
        assert len(data) > 16
        assert read_acks(data) == (set(seqs), 0)


def test_a_ref_names_its_part_segment_and_seq_until_the_part_is_released(
    tmp_path: Path,
) -> None:
    """A trace's record place is one int; once its part is released it names no part (its
    ack is skipped, as for a closed part), and two parts never share a ref."""
    first, second = create_part(str(tmp_path)), create_part(str(tmp_path))
    ref = ref_base(first, 7) | (2**64 - 1)
    assert split_ref(ref) == (first, 7, 2**64 - 1)
    other = ref_base(second, 7) | 3
    assert acks_by_segment([ref, ref - 1, other, ref - 2]) == [
        (first, 7, [2**64 - 1, 2**64 - 2, 2**64 - 3]),
        (second, 7, [3]),
    ]
    assert ref_base(second, 7) | (2**64 - 1) != ref
    first.release(remove=True)
    assert split_ref(ref) == (None, 7, 2**64 - 1)
    assert acks_by_segment([ref, other]) == [(second, 7, [3])]
    assert split_ref(ref_base(second, 1) | 5) == (second, 1, 5)
    second.release(remove=True)
