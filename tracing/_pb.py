"""Protocol Buffers wire format, only as much as OTLP needs: an encode-only writer and a
reader of the few fields the SDK reads in answers.

No ``protobuf`` package: its version pins conflict with other libraries (see the
README's OTLP section), and the messages the SDK writes are few and fixed. The OTLP
encoder (``_otlp_encode``, ``_otlp_attrs``) builds on these primitives; tests check every
byte it writes by parsing it with the official ``opentelemetry-proto`` classes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = [
    "VARINT_TABLE",
    "any_value",
    "fixed64",
    "iter_fields",
    "key_value",
    "length_delimited",
    "read_varint",
    "varint",
]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64 = 2**64 - 1
_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack

# Wire types (protobuf encoding guide): varint, 64-bit, length-delimited, 32-bit.
VARINT, I64, LEN, I32 = 0, 1, 2, 5


def varint(value: int) -> bytes:
    """An unsigned varint; a negative int64 is written as its 64-bit two's complement."""
    if 0 <= value < 128:
        return VARINT_TABLE[value]
    value &= _UINT64
    out = bytearray()
    while value > 127:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _table(size: int) -> tuple[bytes, ...]:
    out = []
    for n in range(size):
        if n < 128:
            out.append(bytes((n,)))
        else:
            out.append(bytes(((n & 0x7F) | 0x80, n >> 7)))
    return tuple(out)


# Varints of every length up to 16 KiB - 1 (one or two bytes), looked up instead of built:
# strings under 16 KiB are most of what the SDK writes. ~0.6 MB, made only when the OTLP
# protocol is first used (this module is imported lazily).
VARINT_TABLE = _table(1 << 14)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def length_delimited(field: int, payload: bytes) -> bytes:
    """A field of wire type LEN: tag, length, bytes (a string, bytes or a message)."""
    return tag(field, LEN) + varint(len(payload)) + payload


def fixed64(field: int, value: int) -> bytes:
    return tag(field, I64) + _FIXED64(value & _UINT64)


def any_value(value: object) -> bytes:
    """An ``AnyValue`` message: str, bool, int (int64), float, or a list/tuple of those.

    Raises:
        TypeError: another type, or an int outside int64 (callers write those as text).
    """
    if isinstance(value, str):
        return length_delimited(1, value.encode("utf-8", "replace"))
    if isinstance(value, bool):
        return tag(2, VARINT) + varint(int(value))
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise TypeError(f"int outside int64: {value}")
        return tag(3, VARINT) + varint(value)
    if isinstance(value, float):
        return tag(4, I64) + _DOUBLE(value)
    if isinstance(value, list | tuple):
        array = b"".join(length_delimited(1, any_value(item)) for item in value)
        return length_delimited(5, array)
    raise TypeError(f"no AnyValue for {type(value).__name__}")


def key_value(key: str, value: object) -> bytes:
    """A ``KeyValue`` message (without the field tag of the list it goes in)."""
    return length_delimited(1, key.encode("utf-8", "replace")) + length_delimited(
        2, any_value(value)
    )


# Reading ------------------------------------------------------------------------------


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it.

    Raises:
        ValueError: the data ends inside the varint, or it is longer than 10 bytes.
    """
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 128:
            return result & _UINT64, pos
        shift += 7


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """``(field number, wire type, value)`` for each field of a message, in order.

    Varints come as ints, LEN fields as bytes, fixed fields as ints; unknown fields are
    yielded too, so a caller skips what it does not read.

    Raises:
        ValueError: the bytes are not a well-formed message.
    """
    pos, end = 0, len(data)
    while pos < end:
        key, pos = read_varint(data, pos)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
            yield field, wire_type, value
        elif wire_type == LEN:
            size, pos = read_varint(data, pos)
            if pos + size > end:
                raise ValueError("truncated length-delimited field")
            yield field, wire_type, data[pos : pos + size]
            pos += size
        elif wire_type in (I64, I32):
            size = 8 if wire_type == I64 else 4
            if pos + size > end:
                raise ValueError("truncated fixed-size field")
            yield field, wire_type, int.from_bytes(data[pos : pos + size], "little")
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
