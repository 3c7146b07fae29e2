"""The wire format as pure functions (``_wire``)."""

from __future__ import annotations

import gzip
import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from tracing import LlmUsage, Span, Trace
from tracing._wire import (
    WireError,
    encode_batch,
    encode_body,
    encode_trace,
    format_time,
    gzip_body,
    parse_results,
    parse_time,
    trace_to_wire,
)

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
START = datetime(2026, 11, 21, 23, 59, 58, tzinfo=UTC)


def _full_trace() -> Trace:
    span = Span(
        "llm",
        id="s1",
        start_time=START,
        end_time=START + timedelta(seconds=0.5),
        llm_usage=LlmUsage("gpt-4o", "openai", 10, 20),
    )
    child = Span("tool", id="s2", parent_id="s1", start_time=START, end_time=START)
    return Trace(
        "summarize",
        id="t1",
        description="desc",
        start_time=START,
        end_time=START + timedelta(seconds=1),
        input="in",
        output="out",
        input_summary="is",
        output_summary="os",
        metadata={"k": 1},
        tags=["x"],
        llm_usage=LlmUsage("gpt-4o", "openai", 10, 20),
        spans=[span, child],
    )


def test_trace_keys_are_camel_case() -> None:
    """A trace serialises with exactly the contract's camelCase keys."""
    wire = trace_to_wire(_full_trace())
    assert set(wire) == {
        "id",
        "name",
        "description",
        "startTime",
        "endTime",
        "duration",
        "status",
        "error",
        "input",
        "output",
        "inputSummary",
        "outputSummary",
        "metadata",
        "tags",
        "llmUsage",
        "spans",
    }
    assert wire["llmUsage"] == {
        "model": "gpt-4o",
        "provider": "openai",
        "promptTokens": 10,
        "completionTokens": 20,
        "apiCallsCount": 1,
    }
    assert set(wire["spans"][0]) == {
        "id",
        "parentId",
        "name",
        "startTime",
        "endTime",
        "duration",
        "status",
        "error",
        "input",
        "output",
        "metadata",
        "llmUsage",
    }


def test_times_duration_status_and_span_parents_on_the_wire() -> None:
    """Times are RFC 3339 Z with microseconds, duration in seconds, spans with parentId."""
    wire = json.loads(encode_trace(_full_trace()))
    assert wire["startTime"] == "2026-11-21T23:59:58.000000Z"
    assert wire["endTime"] == "2026-11-21T23:59:59.000000Z"
    assert wire["duration"] == 1.0
    assert (wire["status"], wire["error"], wire["tags"], wire["metadata"]) == (
        "ok",
        None,
        ["x"],
        {"k": 1},
    )
    assert [s["parentId"] for s in wire["spans"]] == [None, "s1"]
    assert wire["spans"][0]["duration"] == 0.5
    assert wire["spans"][0]["llmUsage"]["promptTokens"] == 10


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2026-01-02T03:04:05.000006Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000000Z"),
        (
            datetime(2026, 1, 2, 5, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T03:04:05.123456Z",
        ),
    ],
)
def test_format_time(value: datetime, text: str) -> None:
    """format_time gives UTC, microseconds and a Z suffix."""
    formatted = format_time(value)
    assert formatted == text
    assert RFC3339_Z.match(formatted)


@pytest.mark.parametrize(
    "text",
    ["2026-01-02T03:04:05.000006Z", "2026-01-02T05:04:05.000006+02:00", "2026-01-02t03:04:05Z"],
)
def test_parse_time_round_trip(text: str) -> None:
    """parse_time reads Z and offsets into aware UTC."""
    parsed = parse_time(text)
    assert parsed.utcoffset() == timedelta(0)
    assert format_time(parsed).startswith("2026-01-02T03:04:05")


@pytest.mark.parametrize("text", ["2026-01-02", "2026-01-02T03:04:05", "yesterday", ""])
def test_parse_time_rejects_non_rfc3339(text: str) -> None:
    """Dates without a time or a zone raise ValueError."""
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time(text)


def test_body_envelope_and_gzip_round_trip() -> None:
    """encode_body wraps traces in {sentAt, traces}; gzip_body is valid gzip of it."""
    parts = [encode_trace(Trace("a", id="1")), encode_trace(Trace("b", id="2"))]
    body = encode_body(parts, START)
    data = json.loads(body)
    assert data["sentAt"] == "2026-11-21T23:59:58.000000Z"
    assert [t["id"] for t in data["traces"]] == ["1", "2"]
    assert gzip.decompress(gzip_body(body)) == body


def test_trace_encoded_once_and_cached() -> None:
    """encode_trace caches the bytes on the trace (serialised once)."""
    trace = Trace("a")
    first = encode_trace(trace)
    trace.name = "changed"
    assert encode_trace(trace) is first


def test_unusual_values_never_fail() -> None:
    """Sets, bytes, huge ints and arbitrary objects still encode."""
    trace = Trace("a", input={"s": {1}, "b": b"x", "big": 2**70, "o": object()})
    data = json.loads(encode_trace(trace))
    assert data["input"]["s"] == [1]
    assert data["input"]["b"] == "x"
    assert data["input"]["big"] == 2**70


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"results": [{"id": "a", "success": true, "message": "ok"}]}', {"a": (True, "ok")}),
        (b'{"results": [{"id": "a", "success": false, "message": "bad"}]}', {"a": (False, "bad")}),
        (b'{"results": []}', {}),
        (b"", None),
        (b"{}", None),
        (b"not json", None),
        (b'{"results": "nope"}', None),
    ],
)
def test_parse_results(body: bytes, expected: dict[str, tuple[bool, str]] | None) -> None:
    """Per-trace results by id; None when the answer lists none."""
    assert parse_results(body) == expected


def test_times_keep_their_microseconds_in_utc() -> None:
    """Start and end times, of the trace and its spans, arrive in UTC with microseconds,
    whichever zone they were given in."""
    plus2 = timezone(timedelta(hours=2))
    start = datetime(2026, 1, 2, 5, 4, 5, 123456, tzinfo=plus2)
    span = Span("s", start_time=start, end_time=start + timedelta(microseconds=1))
    trace = Trace("t", start_time=start, end_time=start + timedelta(seconds=2), spans=[span])
    wire = json.loads(encode_trace(trace))
    assert (wire["startTime"], wire["endTime"]) == (
        "2026-01-02T03:04:05.123456Z",
        "2026-01-02T03:04:07.123456Z",
    )
    assert (wire["spans"][0]["startTime"], wire["spans"][0]["endTime"]) == (
        "2026-01-02T03:04:05.123456Z",
        "2026-01-02T03:04:05.123457Z",
    )
    assert wire["duration"] == 2.0


def test_utc_times_orjson_writes_have_the_same_form() -> None:
    """UTC times with microseconds, which orjson writes itself, have the same RFC 3339 form
    as the others (six digits and ``Z``), in a trace's bytes and in a whole batch body."""
    when = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    expected = b'"2026-01-02T03:04:05.123456Z"'
    assert encode_trace(Trace("t", start_time=when, end_time=when)).count(expected) == 2
    body = encode_batch([Trace("u", start_time=when, metadata={"at": when})], START)
    assert body is not None
    assert body.count(expected) == 2


def test_nan_and_infinity_are_written_as_null() -> None:
    """NaN and infinity are not JSON: they are written as null, also in a trace with a
    non-string key, so the body stays JSON that a strict parser (the collector's) reads."""
    metadata: dict[Any, Any] = {"nan": math.nan, "inf": -math.inf, 1: "int key"}
    trace = Trace("t", metadata=metadata)
    assert orjson.loads(encode_trace(trace))["metadata"] == {
        "nan": None,
        "inf": None,
        "1": "int key",
    }
    body = encode_batch([Trace("u", metadata={"nan": math.nan})], START)
    assert body is not None
    assert orjson.loads(body)["traces"][0]["metadata"] == {"nan": None}


def test_a_nan_beside_a_huge_integer_fails_the_trace_alone() -> None:
    """A value over 64 bits sends the trace through the stdlib encoder, which cannot write
    a NaN as JSON: the trace is a WireError (it fails alone), never a body with ``NaN``."""
    with pytest.raises(WireError, match="trace t-nan cannot be encoded as JSON"):
        encode_trace(Trace("a", id="t-nan", metadata={"big": 2**70, "nan": math.nan}))


def test_an_open_trace_has_no_end_and_no_duration() -> None:
    """A trace or span not ended encodes endTime and duration as null; no usage, tags or
    spans encode as null and empty lists."""
    wire = json.loads(encode_trace(Trace("open", spans=[Span("s")])))
    assert (wire["endTime"], wire["duration"], wire["llmUsage"]) == (None, None, None)
    assert (wire["tags"], wire["metadata"]) == ([], {})
    assert (wire["spans"][0]["endTime"], wire["spans"][0]["llmUsage"]) == (None, None)
    assert json.loads(encode_trace(Trace("bare")))["spans"] == []


def test_values_json_lacks_are_written_as_json() -> None:
    """Datetimes become RFC 3339 strings, frozensets lists, bytes of any kind text (bad
    UTF-8 replaced), attrs classes objects, anything else its str()."""
    when = datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC)
    value = {
        "when": when,
        "frozen": frozenset({2}),
        "raw": bytearray(b"ab"),
        "view": memoryview(b"cd"),
        "bad": b"\xff",
        "usage": LlmUsage("m", "p", 1, 2),
        "path": Path("/tmp/x"),
    }
    data = json.loads(encode_trace(Trace("a", input=value, metadata={"set": {3}})))
    assert data["input"] == {
        "when": "2026-01-02T03:04:05.000007Z",
        "frozen": [2],
        "raw": "ab",
        "view": "cd",
        "bad": "\ufffd",
        "usage": {
            "model": "m",
            "provider": "p",
            "prompt_tokens": 1,
            "completion_tokens": 2,
            "api_calls_count": 1,
        },
        "path": "/tmp/x",
    }
    assert data["metadata"] == {"set": [3]}
    # A value orjson refuses (over 64 bits) sends the trace through the stdlib encoder,
    # which writes the same things the same way.
    slow = json.loads(encode_trace(Trace("b", input={**value, "big": 2**70})))
    assert slow["input"] == {**data["input"], "big": 2**70}


def test_keys_only_orjson_writes_are_kept_on_the_per_trace_path() -> None:
    """A datetime dict key (orjson writes it, the stdlib cannot) and a set in one trace
    encode on their own: the stdlib fallback is only for what orjson refuses."""
    when = datetime(2026, 1, 2, tzinfo=UTC)
    data = json.loads(encode_trace(Trace("a", input={when: {3}})))
    assert data["input"] == {"2026-01-02T00:00:00Z": [3]}


def test_the_stdlib_fallback_writes_text_as_utf8() -> None:
    """Through the stdlib encoder (a value over 64 bits), text stays UTF-8, as orjson
    writes it, not ``\\u`` escapes."""
    encoded = encode_trace(Trace("a", input={"big": 2**70, "text": "é€"}))
    assert '"text":"é€"'.encode() in encoded.replace(b" ", b"")
    assert json.loads(encoded)["input"] == {"big": 2**70, "text": "é€"}


def test_a_lone_surrogate_becomes_a_question_mark_and_the_trace_is_kept() -> None:
    """orjson and UTF-8 refuse a lone surrogate; it is written as "?" (as in OTLP mode)
    rather than failing the trace, and the rest of the text is kept."""
    trace = Trace("bad \ud800 name", input={"k": "in \udfff é"}, metadata={"m": "\ud83d"})
    data = orjson.loads(encode_trace(trace))
    assert data["name"] == "bad ? name"
    assert data["input"] == {"k": "in ? é"}
    assert data["metadata"] == {"m": "?"}


def test_a_trace_no_encoder_can_write_raises_wire_error() -> None:
    """A circular reference is a WireError naming the trace, not a crash."""
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(WireError, match="trace t-loop cannot be encoded as JSON"):
        encode_trace(Trace("a", id="t-loop", input=loop))


def test_gzip_body_is_deterministic() -> None:
    """The same body compresses to the same bytes (no timestamp in the gzip header)."""
    body = encode_body([encode_trace(Trace("a", id="1"))], START)
    assert gzip_body(body) == gzip_body(body)
    assert gzip_body(body)[4:8] == b"\x00\x00\x00\x00"  # MTIME


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"results": [{"id": "a"}]}', {"a": (True, "")}),
        (b'{"results": [{"id": "a", "success": null, "message": null}]}', {"a": (True, "")}),
        (b'{"results": [{"id": "a", "success": 0, "message": 7}]}', {"a": (True, "7")}),
        (b'{"results": [{"id": 1, "success": false}, "x", {"id": "b"}]}', {"b": (True, "")}),
        (b'[{"id": "a"}]', None),
    ],
)
def test_parse_results_reads_only_what_it_understands(
    body: bytes, expected: dict[str, tuple[bool, str]] | None
) -> None:
    """Only ``success: false`` rejects; items without a string id are skipped."""
    assert parse_results(body) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-01-02X03:04:05.000000Z", "not an RFC 3339 date-time"),
        ("2026-01-02T03:04:05.500000", "RFC 3339 time needs 'Z' or an offset"),
    ],
)
def test_parse_time_says_what_is_wrong(text: str, message: str) -> None:
    """A wrong separator and a missing zone are refused, each with its own reason."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_time(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02T03:04:05.000006z",
        "2026-01-02 03:04:05.000006Z",
        "2026-01-02T05:04:05.000006+02:00",
    ],
)
def test_parse_time_gives_utc_itself(text: str) -> None:
    """A lowercase ``z``, a space separator and an offset all parse, to the UTC zone."""
    parsed = parse_time(text)
    assert parsed.tzinfo is UTC
    assert parsed == datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
