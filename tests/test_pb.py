"""The protobuf primitives (``_pb``) and the OTLP answer readers (``_otlp``), checked
against the official generated classes."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests._otlp import value_of
from tracing._otlp import read_partial_success
from tracing._pb import any_value, iter_fields, key_value, read_varint, varint

INTS = [0, 1, 127, 128, 300, 16383, 16384, 2**31, 2**62, 2**63 - 1, -1, -300, -(2**63)]


@pytest.mark.parametrize("value", INTS)
def test_int_any_value_matches_protobuf(value: int) -> None:
    """int64 values (negatives as 10-byte two's complement) encode as protobuf does."""
    assert any_value(value) == AnyValue(int_value=value).SerializeToString()
    if value >= 0:
        assert read_varint(varint(value), 0) == (value, len(varint(value)))


@pytest.mark.parametrize(
    "value", ["", "ascii", "ünï ☃ 𝄞", "x" * 20000, True, False, 0.5, -1e300, ["a", 1, 2.5, True]]
)
def test_any_value_round_trips(value: Any) -> None:
    """str, bool, double and arrays parse back with the official AnyValue."""
    parsed = AnyValue()
    parsed.ParseFromString(any_value(value))
    assert value_of(parsed) == value
    kv = KeyValue()
    kv.ParseFromString(key_value("k", value))
    assert (kv.key, value_of(kv.value)) == ("k", value)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, None, {"a": 1}, b"raw"])
def test_any_value_refuses_what_otlp_cannot_hold(value: Any) -> None:
    """Ints beyond int64 and other types are TypeError (callers write them as text)."""
    with pytest.raises(TypeError):
        any_value(value)


@pytest.mark.parametrize(
    "data", [b"\x0a\x05abc", b"\x08", b"\x08\xff", b"\x00\x01", b"\x09ab", b"\x0f"]
)
def test_malformed_messages_raise_value_error(data: bytes) -> None:
    """Truncated fields, field 0, and unknown wire types are ValueError, never anything else."""
    with pytest.raises(ValueError, match=r"truncated|overlong|field number 0|wire type"):
        list(iter_fields(data))


@pytest.mark.parametrize(
    ("rejected", "message", "expected"),
    [(0, "", None), (3, "", (3, "")), (0, "warn", (0, "warn")), (-2, "odd", (-2, "odd"))],
)
def test_read_partial_success(rejected: int, message: str, expected: Any) -> None:
    """partial_success is read from protobuf; an empty one is a full success (None)."""
    body = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
    ).SerializeToString()
    assert read_partial_success(body, "application/x-protobuf") == expected


def test_read_partial_success_skips_unknown_fields() -> None:
    """Fields a newer server adds are skipped."""
    body = b"\x12\x03abc" + b"\x0a\x04\x08\x05\x18\x01" + b"\x19" + bytes(8)
    assert read_partial_success(body) == (5, "")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"partialSuccess":{"rejectedSpans":"2","errorMessage":"m"}}', (2, "m")),
        (b'{"partial_success":{"rejected_spans":1}}', (1, "")),
        (b'{"partialSuccess":{}}', None),
        (b'{"partialSuccess":{"rejectedSpans":"x"}}', None),
        (b"[]", None),
        (b"{", None),
    ],
)
def test_read_partial_success_json(body: bytes, expected: Any) -> None:
    """OTLP/JSON answers: lowerCamelCase (or snake) keys, int64 as string or number."""
    assert read_partial_success(body, "application/json") == expected
