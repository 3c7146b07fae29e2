"""Envelope and per-trace validation (``tracing.collector._validate``), without a server."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tracing.collector._json import _walk_over, depth_over
from tracing.collector._validate import (
    MAX_DEPTH,
    MAX_ID,
    MAX_NAME,
    EnvelopeError,
    Rejected,
    ValidTrace,
    parse_envelope,
    validate_trace,
)

START = "2026-11-21T12:00:00.000000Z"
END = "2026-11-21T12:00:02.500000Z"


def wire(**changes: Any) -> dict[str, Any]:
    trace: dict[str, Any] = {
        "id": "t1",
        "name": "summarize",
        "startTime": START,
        "endTime": END,
        "status": "ok",
        "llmUsage": {"model": "m", "provider": "p", "promptTokens": 3, "completionTokens": 4},
        "spans": [
            {"id": "s1", "parentId": None, "name": "llm", "startTime": START, "endTime": END},
        ],
    }
    for key, value in changes.items():
        if value is ...:
            trace.pop(key, None)
        else:
            trace[key] = value
    return trace


def nested(depth: int) -> Any:
    """``depth`` lists inside each other: ``nested(1) == []``."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_valid_trace_is_normalised() -> None:
    """Times become ``Z`` with microseconds, duration is recomputed, totals are summed."""
    result = validate_trace(wire(startTime="2026-11-21T13:00:00+01:00", duration=99))
    assert isinstance(result, ValidTrace)
    doc = orjson.loads(result.document)
    assert doc["startTime"] == START
    assert doc["duration"] == 2.5
    assert doc["spans"][0]["duration"] == 2.5
    assert result.total_tokens == 7
    assert result.span_count == 1
    summary = orjson.loads(result.summary)
    assert summary["totalTokens"] == 7
    assert summary["spanCount"] == 1
    assert "spans" not in summary
    assert "input" not in summary


def test_tokens_fall_back_to_the_spans() -> None:
    """Without trace-level usage, the total is the sum of the spans' usage."""
    usage = {"model": "m", "provider": "p", "promptTokens": 5, "completionTokens": 6}
    spans = [
        {"id": "a", "name": "llm", "startTime": START, "llmUsage": usage},
        {"id": "b", "name": "llm", "startTime": START, "llmUsage": usage},
    ]
    result = validate_trace(wire(llmUsage=None, spans=spans))
    assert isinstance(result, ValidTrace)
    assert result.total_tokens == 22


def test_minimal_trace_is_accepted() -> None:
    """Fields the SDK user did not set may be omitted: id, name and startTime suffice."""
    result = validate_trace({"id": "x", "name": "n", "startTime": START})
    assert isinstance(result, ValidTrace)
    assert result.status == "ok"
    assert orjson.loads(result.document)["endTime"] is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": ...}, "trace id must be a non-empty string"),
        ({"id": ""}, "trace id must be a non-empty string"),
        ({"id": 5}, "trace id must be a non-empty string"),
        ({"id": "x" * (MAX_ID + 1)}, "at most 256"),
        ({"name": ...}, "trace name must be a non-empty string"),
        ({"name": ["n"]}, "trace name must be a non-empty string"),
        ({"name": "n" * (MAX_NAME + 1)}, "at most 1024"),
        ({"startTime": ...}, "startTime is required"),
        ({"startTime": "yesterday"}, "startTime must be an RFC 3339"),
        ({"startTime": "2026-11-21T12:00:00"}, "startTime must be an RFC 3339"),
        ({"endTime": 1234}, "endTime must be an RFC 3339"),
        ({"endTime": "2026-11-21T11:59:59Z"}, "endTime is before its startTime"),
        ({"status": "failed"}, "status must be 'ok' or 'error'"),
        ({"llmUsage": {"promptTokens": -1}}, "promptTokens must be a non-negative integer"),
        ({"llmUsage": {"completionTokens": 1.5}}, "completionTokens must be a non-negative"),
        ({"llmUsage": {"promptTokens": True}}, "promptTokens must be a non-negative integer"),
        ({"llmUsage": {"completionTokens": "2"}}, "completionTokens must be a non-negative"),
        (
            {"spans": [{"id": "s", "name": "n", "llmUsage": {"promptTokens": -3}}]},
            "span 0 llmUsage",
        ),
        ({"spans": {"id": "s"}}, "spans must be a list"),
        ({"spans": ["s"]}, "span 0 must be a JSON object"),
        ({"spans": [{"name": "s"}]}, "span 0 id must be a string"),
        ({"spans": [{"id": 4, "name": "s"}]}, "span 0 id must be a string"),
        ({"spans": [{"id": "s"}]}, "span 0 name must be a string"),
        ({"spans": [{"id": "s" * (MAX_ID + 1), "name": "n"}]}, "span 0 id is 257 characters"),
        ({"spans": [{"id": "s", "name": "n" * (MAX_NAME + 1)}]}, "span 0 name is 1025"),
        ({"spans": [{"id": "s", "name": "n", "endTime": "soon"}]}, "span 0 endTime must be"),
        ({"spans": [{"id": "s", "name": "n", "startTime": END, "endTime": START}]}, "before"),
        ({"input": nested(MAX_DEPTH + 1)}, "trace input is nested more than 128 levels"),
        ({"metadata": {"k": nested(MAX_DEPTH)}}, "trace metadata is nested more than 128"),
        ({"spans": [{"id": "s", "name": "n", "output": nested(129)}]}, "span 0 output is nested"),
        ({"unknownKey": nested(900)}, "trace unknownKey is nested more than 128 levels"),
        ({"spans": [{"id": "s", "name": "n", "x-y": nested(129)}]}, "span 0 'x-y' is nested"),
        ({"status": nested(990)}, "trace status must be 'ok' or 'error', got a list"),
        ({"startTime": nested(990)}, "startTime must be an RFC 3339 date-time, got a list"),
        ({"startTime": "2026-W47-6T12:00:00Z"}, "startTime must be an RFC 3339"),
        ({"startTime": "2026-11-21T12:00:00,5Z"}, "startTime must be an RFC 3339"),
        ({"startTime": "2026-11-21T12:00:00+01"}, "startTime must be an RFC 3339"),
        ({"startTime": "0001-01-01T00:00:00+01:00"}, "startTime must be an RFC 3339"),
        ({"startTime": "\uff12026-11-21T12:00:00Z"}, "startTime must be an RFC 3339"),
    ],
)
def test_rule_rejects_the_trace(changes: dict[str, Any], message: str) -> None:
    """Each broken rule rejects the trace with a message naming what is wrong."""
    result = validate_trace(wire(**changes))
    assert isinstance(result, Rejected)
    assert message in result.message


@pytest.mark.parametrize(
    "changes",
    [
        # The README's list ("What ingest accepts") is complete: what it does not name is
        # stored as sent.
        {"llmUsage": {"apiCallsCount": "2", "model": 5}},
        {"llmUsage": "lots"},
        {"metadata": [1]},
        {"tags": "a,b"},
        {"description": 3},
        {"error": {"x": 1}},
        {"status": None},
        {"endTime": None},
        {"input": nested(MAX_DEPTH), "output": {"k": nested(MAX_DEPTH - 1)}},
        {"id": "i" * MAX_ID, "name": "n" * MAX_NAME},
        {"startTime": "2026-11-21T12:00:00.123456789Z", "endTime": None},
        {"startTime": "2026-11-21 12:00:00z"},
        {"spans": [{"id": "s", "name": "n", "endTime": START}]},
        {"spans": [{"id": "s", "name": "n", "startTime": None, "endTime": None}]},
        {"spans": [{"id": "s", "name": "n", "startTime": START}]},
        {"spans": [{"id": "", "name": ""}]},
        {"spans": [{"id": "s", "name": "n", "status": "bad", "parentId": 3}]},
        {"spans": [{"id": "s" * MAX_ID, "name": "n" * MAX_NAME, "input": nested(MAX_DEPTH)}]},
        {"spans": None},
        {"unknownKey": nested(MAX_DEPTH)},
    ],
)
def test_what_the_list_does_not_name_is_accepted(changes: dict[str, Any]) -> None:
    """Only the rules of the README's list ("What ingest accepts") reject a trace; span
    times may be missing or null."""
    result = validate_trace(wire(**changes))
    assert isinstance(result, ValidTrace), result
    doc = orjson.loads(result.document)
    assert "unknownKey" not in doc


def test_nanosecond_fractions_are_cut_to_microseconds() -> None:
    """Nine fraction digits (OpenTelemetry clocks) are RFC 3339: kept to the microsecond."""
    result = validate_trace(wire(startTime="2026-11-21T12:00:00.123456789Z", endTime=...))
    assert isinstance(result, ValidTrace)
    assert orjson.loads(result.document)["startTime"] == "2026-11-21T12:00:00.123456Z"


def test_a_leap_second_is_the_microsecond_before_it() -> None:
    """RFC 3339 allows second 60 (section 5.7); datetime cannot hold it."""
    result = validate_trace(
        wire(startTime="2016-12-31T23:59:60.5Z", endTime="2017-01-01T00:00:00Z")
    )
    assert isinstance(result, ValidTrace)
    doc = orjson.loads(result.document)
    assert doc["startTime"] == "2016-12-31T23:59:59.999999Z"
    assert doc["duration"] == 0.000001


def test_rejected_keeps_a_usable_id() -> None:
    """The result of a rejected trace carries its id when it was a string, else None."""
    bad_status = validate_trace(wire(status="bad"))
    assert isinstance(bad_status, Rejected)
    assert bad_status.id == "t1"
    rejected = validate_trace(wire(id=7))
    assert isinstance(rejected, Rejected)
    assert rejected.id is None
    not_object = validate_trace(["t1"])
    assert isinstance(not_object, Rejected)
    assert not_object.message == "a trace must be a JSON object"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"garbage",
        b"\xff\xfe",
        b"[]",
        b'"traces"',
        b"{}",
        b'{"traces": {}}',
        b'{"traces": null}',
        b'{"sentAt": "yesterday", "traces": []}',
        b'{"sentAt": 5, "traces": []}',
        b'{"sentAt": ' + b"[" * 990 + b"]" * 990 + b', "traces": []}',
        b'{"sentAt": ' + b"[" * 5000 + b"]" * 5000 + b', "traces": []}',
        b"[" * 5000 + b"]" * 5000,
        b'{"traces": [' + b"[" * 5000,
        b'{"traces": ["' + b'\\"' * 1000,
        b'{"traces": [NaN]}',
    ],
)
def test_not_an_envelope(body: bytes) -> None:
    """Anything but ``{"sentAt": ..., "traces": [...]}`` is an EnvelopeError."""
    with pytest.raises(EnvelopeError):
        parse_envelope(body)


def test_deep_values_beyond_the_parser_cost_only_their_trace() -> None:
    """A value nested past orjson's 1,024 levels is cut, not the body: its trace is
    rejected for depth (named by its id) and the others are valid."""
    deep = b"[" * 5000 + b"]" * 5000
    good = orjson.dumps(wire(id="good"))
    bad = b'{"id": "bad", "name": "n", "startTime": "' + START.encode() + b'", "input": ' + deep
    body = b'{"sentAt": null, "traces": [' + good + b"," + bad + b"}," + good + b"]}"
    results = [validate_trace(item) for item in parse_envelope(body)]
    assert [type(r) for r in results] == [ValidTrace, Rejected, ValidTrace]
    assert isinstance(results[1], Rejected)
    assert results[1].id == "bad"
    assert "nested more than 128 levels" in results[1].message


def test_lone_surrogates_cost_only_their_trace() -> None:
    """JSON allows a lone surrogate escape; no store can hold one, so its trace alone is
    rejected (and named only when its id is not the broken string)."""
    good = orjson.dumps(wire(id="good"))
    body = (
        b'{"traces": ['
        + good
        + b', {"id": "a", "name": "n", "startTime": "'
        + START.encode()
        + b'", "input": "\\ud800"}, {"id": "\\udfff", "name": "n"}]}'
    )
    results = [validate_trace(item) for item in parse_envelope(body)]
    assert [type(r) for r in results] == [ValidTrace, Rejected, Rejected]
    assert isinstance(results[1], Rejected)
    assert results[1].id == "a"
    assert "cannot be stored" in results[1].message
    assert results[2].id is None


def test_envelope_gives_the_traces() -> None:
    """A well-formed envelope yields its traces list, sentAt optional."""
    assert parse_envelope(b'{"sentAt": "2026-11-21T12:00:00Z", "traces": [1, 2]}') == [1, 2]
    assert parse_envelope(b'{"traces": []}') == []


@pytest.mark.parametrize("depth", [1, 2, 127, 128, 129, 200, 254, 300, 1000])
@pytest.mark.parametrize("leaf", [None, {"a": 1}, "\ud800"])
def test_the_orjson_depth_check_is_the_rule(depth: int, leaf: Any) -> None:
    """depth_over() asks orjson (C) instead of walking in Python: same answer at every
    depth, whatever sits at the bottom (a lone surrogate is not a depth problem)."""
    value: Any = [] if leaf is None else [leaf]
    for _ in range(depth - 1):
        value = [value]
    expected = depth + (leaf == {"a": 1}) > MAX_DEPTH
    assert _walk_over(value, MAX_DEPTH) is expected
    assert depth_over(value) is expected
