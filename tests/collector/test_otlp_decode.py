"""The protobuf decoder (``_otlp_decode``) against bodies the official classes serialise."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.collector.otlp_pb import any_value, key_values, request
from tracing.collector._otlp_decode import decode_request
from tracing.collector._otlp_span import MAX_DEPTH, BadSpan, DecodeError, OtlpSpan
from tracing.collector._protobuf import write_bytes, write_varint_field

TRACE = bytes(range(1, 17))
SPAN = bytes(range(1, 9))
PARENT = bytes(range(11, 19))


def rich_span() -> Span:
    return Span(
        trace_id=TRACE,
        span_id=SPAN,
        parent_span_id=PARENT,
        trace_state="k=v",
        flags=0x101,
        name="GET /items/{id}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_764_000_000_123_456_789,
        end_time_unix_nano=1_764_000_001_000_000_000,
        attributes=key_values(
            {"http.route": "/items/{id}", "n": -5, "ratio": 0.25, "ok": True, "list": [1, "a"]}
        ),
        dropped_attributes_count=2,
        events=[
            Span.Event(
                time_unix_nano=1_764_000_000_500_000_000,
                name="exception",
                attributes=key_values({"exception.message": "boom"}),
            )
        ],
        links=[Span.Link(trace_id=TRACE, span_id=PARENT, attributes=key_values({"l": 1}))],
        status=Status(code=Status.STATUS_CODE_ERROR, message="failed"),
    )


def decode_one(span: Span, **resource: Any) -> OtlpSpan | BadSpan:
    spans = decode_request(request([span], resource or None).SerializeToString())
    assert len(spans) == 1
    return spans[0]


def test_every_span_field_is_read() -> None:
    """Ids, name, kind, times, attributes, events, links, status, resource and scope."""
    span = decode_one(rich_span(), **{"service.name": "shop", "host.name": "h1"})
    assert isinstance(span, OtlpSpan)
    assert (span.trace_id, span.span_id, span.parent_span_id) == (TRACE, SPAN, PARENT)
    assert span.name == "GET /items/{id}"
    assert span.kind == 2
    assert (span.start_ns, span.end_ns) == (1_764_000_000_123_456_789, 1_764_000_001_000_000_000)
    assert span.attributes == {
        "http.route": "/items/{id}",
        "n": -5,
        "ratio": 0.25,
        "ok": True,
        "list": [1, "a"],
    }
    assert [(e.name, e.time_ns, dict(e.attributes)) for e in span.events] == [
        ("exception", 1_764_000_000_500_000_000, {"exception.message": "boom"})
    ]
    assert [(x.trace_id, x.span_id, dict(x.attributes)) for x in span.links] == [
        (TRACE, PARENT, {"l": 1})
    ]
    assert (span.status_code, span.status_message) == (2, "failed")
    assert span.resource == {"service.name": "shop", "host.name": "h1"}
    assert (span.scope_name, span.scope_version) == ("test-scope", "")


def test_an_empty_request_has_no_spans() -> None:
    """Zero bytes are a valid, empty ExportTraceServiceRequest."""
    assert decode_request(b"") == []


def test_unknown_fields_are_skipped() -> None:
    """Fields the decoder does not know (any wire type) are skipped, as protobuf requires."""
    body = request([rich_span()]).SerializeToString()
    extra = write_varint_field(99, 7) + write_bytes(100, b"\x00\x01") + b"\xa5\x06\x01\x02\x03\x04"
    spans = decode_request(extra + body + extra)
    assert len(spans) == 1
    assert isinstance(spans[0], OtlpSpan)
    assert spans[0].name == "GET /items/{id}"


ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


def plain(value: Any) -> Any:
    """What the decoder makes of a value: bytes as base64 text."""
    import base64

    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@settings(max_examples=200, derandomize=True)
@given(value=ANY)
def test_attribute_values_round_trip(value: Any) -> None:
    """Every AnyValue (scalars, arrays, kvlists, bytes, empty) decodes to its Python form."""
    span = Span(
        trace_id=TRACE,
        span_id=SPAN,
        name="n",
        attributes=[KeyValue(key="k", value=any_value(value))],
    )
    decoded = decode_one(span)
    assert isinstance(decoded, OtlpSpan)
    assert decoded.attributes == {"k": plain(value)}


def test_special_doubles() -> None:
    """Infinities and NaN come through as floats."""
    values = {"inf": math.inf, "ninf": -math.inf, "nan": math.nan}
    decoded = decode_one(
        Span(trace_id=TRACE, span_id=SPAN, name="n", attributes=key_values(values))
    )
    assert isinstance(decoded, OtlpSpan)
    assert decoded.attributes["inf"] == math.inf
    assert decoded.attributes["ninf"] == -math.inf
    assert math.isnan(decoded.attributes["nan"])


def nested(depth: int) -> bytes:
    """An AnyValue nested ``depth`` levels (arrays of one), hand-encoded: the official
    classes refuse to build past their own depth limit of 100."""
    value = write_bytes(1, b"leaf")
    for _ in range(depth - 1):
        value = write_bytes(5, write_bytes(1, value))  # AnyValue{array_value{values: [..]}}
    return value


def hand_span(name: str, span_id: bytes, value: bytes) -> bytes:
    span = write_bytes(1, TRACE) + write_bytes(2, span_id) + write_bytes(5, name.encode())
    return span + write_bytes(9, write_bytes(1, b"k") + write_bytes(2, value))


def hand_request(*spans: bytes) -> bytes:
    return write_bytes(1, write_bytes(2, b"".join(write_bytes(2, s) for s in spans)))


def test_too_deep_a_value_rejects_its_span_alone() -> None:
    """A value nested past 128 levels makes that span a BadSpan; the others are read."""
    ok = hand_span("ok", SPAN, nested(MAX_DEPTH))
    deep = hand_span("deep", PARENT, nested(MAX_DEPTH + 1))
    first, second = decode_request(hand_request(ok, deep))
    assert isinstance(first, OtlpSpan)
    assert first.name == "ok"
    assert isinstance(second, BadSpan)
    assert "128" in second.message


def test_ten_thousand_levels_do_not_recurse_without_bound() -> None:
    """A value nested 10,000 levels deep is a BadSpan, not a RecursionError."""
    (decoded,) = decode_request(hand_request(hand_span("n", SPAN, nested(10_000))))
    assert isinstance(decoded, BadSpan)


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a",  # a LEN field with no length
        b"\x0a\x05abc",  # a length past the end
        b"\x0b",  # a group (wire type 3)
        b"\x00",  # field number 0
        b"\x08" + b"\xff" * 11,  # a varint over 10 bytes
        b"\x09\x01\x02",  # a fixed64 cut short
        write_bytes(1, write_bytes(2, write_bytes(2, write_bytes(5, b"\xff\xfe")))),  # bad UTF-8
        write_bytes(1, write_bytes(2, write_bytes(2, write_varint_field(1, 5)))),  # wrong wire type
    ],
)
def test_malformed_bodies_are_decode_errors(body: bytes) -> None:
    """Truncated fields, groups, bad UTF-8 and mismatched wire types fail the whole body."""
    with pytest.raises(DecodeError, match="not a valid OTLP protobuf"):
        decode_request(body)


@settings(max_examples=300, derandomize=True)
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_fail_cleanly(body: bytes) -> None:
    """Any bytes give spans or a DecodeError, never another exception."""
    try:
        decoded = decode_request(body)
    except DecodeError:
        return
    assert all(isinstance(s, OtlpSpan | BadSpan) for s in decoded)


@settings(max_examples=100, derandomize=True)
@given(cut=st.integers(0, 10_000))
def test_every_truncation_of_a_real_body_fails_cleanly(cut: int) -> None:
    """A real body cut anywhere is refused or read as at most its spans, never a crash."""
    body = request([rich_span(), rich_span()]).SerializeToString()
    try:
        decoded = decode_request(body[: cut % (len(body) + 1)])
    except DecodeError:
        return
    assert len(decoded) <= 2
    assert all(isinstance(s, OtlpSpan | BadSpan) for s in decoded)


def test_the_whole_body_reads_both_spans() -> None:
    """The uncut body of the truncation test holds two readable spans."""
    body = request([rich_span(), rich_span()]).SerializeToString()
    assert [type(s) for s in decode_request(body)] == [OtlpSpan, OtlpSpan]


def test_the_collector_loads_no_protobuf_package() -> None:
    """The app with its OTLP route imports neither ``google.protobuf`` nor OpenTelemetry."""
    code = (
        "import sys, tracing, tracing.collector._app\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('google', 'opentelemetry')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
