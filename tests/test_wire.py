"""The wire format as pure functions (``_wire``)."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tracing import LlmUsage, Span, Trace
from tracing._wire import (
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
