"""The protobuf wire format, as little of it as OTLP ingest needs: a reader that walks the
fields of one message, and a writer for the two small messages the collector answers with.

No generated code and no ``protobuf`` package: a message is a run of ``(tag, value)``
pairs, and the OTLP decoder knows which field numbers it wants. Readers work on
``memoryview`` so nested messages are sliced, never copied.
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
    "write_bytes",
    "write_varint_field",
]

VARINT, I64, LEN, I32 = 0, 1, 2, 5
_MAX_VARINT_BYTES = 10
_U64 = 1 << 64

Field = tuple[int, int, int | memoryview]


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
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


def fields(buf: memoryview) -> Iterator[Field]:
    """Each field of one message as ``(number, wire type, value)``.

    The value is an int for VARINT, I64 and I32 (unsigned, little-endian for the fixed
    ones) and a ``memoryview`` of the payload for LEN. Groups (wire types 3 and 4, long
    deprecated) and anything malformed raise.

    Raises:
        ProtobufError: a truncated field, a bad wire type or a field number of 0.
    """
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0 is not allowed")
        if wire == VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == LEN:
            size, pos = _varint(buf, pos, end)
            if size > end - pos:
                raise ProtobufError(f"field {number} runs past the end of its message")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire in (I64, I32):
            width = 8 if wire == I64 else 4
            if width > end - pos:
                raise ProtobufError(f"field {number} runs past the end of its message")
            yield number, wire, int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        else:
            raise ProtobufError(f"field {number} has wire type {wire}, which is not supported")


def as_signed(value: int, bits: int = 64) -> int:
    """Two's complement: how ``int64``/``sfixed64`` values come back from the wire."""
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def text(value: int | memoryview, number: int) -> str:
    """A ``string`` field's value.

    Raises:
        ProtobufError: the field is not length-delimited or not valid UTF-8.
    """
    if not isinstance(value, memoryview):
        raise ProtobufError(f"field {number} must be length-delimited (a string)")
    try:
        return str(value, "utf-8")
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
