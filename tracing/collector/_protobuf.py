"""The protobuf wire format, as little of it as OTLP ingest needs: a reader that walks the
fields of one message, and a writer for the two small messages the collector answers with.

No generated code and no ``protobuf`` package: a message is a run of ``(tag, value)``
pairs, and the OTLP decoder knows which field numbers it wants. The reader works on
``(buffer, start, end)`` ranges, so nested messages are never copied.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "I32",
    "I64",
    "LEN",
    "VARINT",
    "ProtobufError",
    "as_signed",
    "fields",
    "text",
    "varint_at",
    "write_bytes",
    "write_varint_field",
]

VARINT, I64, LEN, I32 = 0, 1, 2, 5
_MAX_VARINT_BYTES = 10
_U64 = 1 << 64

# (number, wire type, a, b): for LEN, ``buf[a:b]`` is the payload; otherwise ``a`` is the
# value (unsigned; little-endian for the fixed widths) and ``b`` is unused.
Field = tuple[int, int, int, int]


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def varint_at(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = 0
    shift = 0
    start = pos
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & (_U64 - 1), pos
        shift += 7
        if pos - start >= _MAX_VARINT_BYTES:
            raise ProtobufError("a varint is longer than 10 bytes")
    raise ProtobufError("the message ends inside a varint")


def fields(buf: bytes, pos: int, end: int) -> Iterator[Field]:
    """Each field of the message in ``buf[pos:end]``, in order.

    One-byte tags and lengths (nearly all of them) take a fast path. Groups (wire types
    3 and 4, long deprecated) and anything malformed raise.

    Raises:
        ProtobufError: a truncated field, a bad wire type or a field number of 0.
    """
    while pos < end:
        key = buf[pos]
        pos += 1
        if key >= 0x80:
            key, pos = varint_at(buf, pos - 1, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0 is not allowed")
        if wire == LEN:
            if pos >= end:
                raise ProtobufError(f"field {number} has no length")
            size = buf[pos]
            pos += 1
            if size >= 0x80:
                size, pos = varint_at(buf, pos - 1, end)
            stop = pos + size
            if stop > end:
                raise ProtobufError(f"field {number} runs past the end of its message")
            yield number, LEN, pos, stop
            pos = stop
        elif wire == VARINT:
            value, pos = varint_at(buf, pos, end)
            yield number, VARINT, value, 0
        elif wire in (I64, I32):
            stop = pos + (8 if wire == I64 else 4)
            if stop > end:
                raise ProtobufError(f"field {number} runs past the end of its message")
            yield number, wire, int.from_bytes(buf[pos:stop], "little"), 0
            pos = stop
        else:
            raise ProtobufError(f"field {number} has wire type {wire}, which is not supported")


def as_signed(value: int, bits: int = 64) -> int:
    """Two's complement: how ``int64``/``sfixed64`` values come back from the wire."""
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def text(buf: bytes, start: int, stop: int, number: int) -> str:
    """A ``string`` field's value.

    Raises:
        ProtobufError: not valid UTF-8.
    """
    try:
        return buf[start:stop].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError(f"field {number} is not valid UTF-8") from None


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    value &= _U64 - 1
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_varint_field(number: int, value: int) -> bytes:
    """One VARINT field (``int32``, ``int64``, ``uint32``, an enum, a bool)."""
    return _encode_varint(number << 3 | VARINT) + _encode_varint(value)


def write_bytes(number: int, payload: bytes) -> bytes:
    """One LEN field: a string, bytes, or an embedded message already encoded."""
    return _encode_varint(number << 3 | LEN) + _encode_varint(len(payload)) + payload
