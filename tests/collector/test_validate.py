"""Envelope and per-trace validation (``tracing.collector._validate``), without a server."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tracing.collector._validate import (
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
        ({"llmUsage": {"apiCallsCount": "2"}}, "apiCallsCount must be a non-negative"),
        ({"llmUsage": "lots"}, "llmUsage must be an object"),
        ({"spans": {"id": "s"}}, "spans must be a list"),
        ({"spans": ["s"]}, "span 0 must be a JSON object"),
        ({"spans": [{"name": "s"}]}, "span 0 id must be a non-empty string"),
        ({"spans": [{"id": "s"}]}, "span 0 name must be a non-empty string"),
        ({"spans": [{"id": "s", "name": "n", "endTime": START}]}, "startTime is required"),
        ({"spans": [{"id": "s", "name": "n", "startTime": END, "endTime": START}]}, "before"),
        ({"spans": [{"id": "s", "name": "n", "status": "bad"}]}, "span 0 status"),
        ({"spans": [{"id": "s", "name": "n", "parentId": 3}]}, "parentId must be a string"),
        ({"metadata": [1]}, "metadata must be an object"),
        ({"tags": "a,b"}, "tags must be a list of strings"),
        ({"description": 3}, "description must be a string"),
        ({"error": {"x": 1}}, "error must be a string"),
    ],
)
def test_rule_rejects_the_trace(changes: dict[str, Any], message: str) -> None:
    """Each broken rule rejects the trace with a message naming what is wrong."""
    result = validate_trace(wire(**changes))
    assert isinstance(result, Rejected)
    assert message in result.message


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
    ],
)
def test_not_an_envelope(body: bytes) -> None:
    """Anything but ``{"sentAt": ..., "traces": [...]}`` is an EnvelopeError."""
    with pytest.raises(EnvelopeError):
        parse_envelope(body)


def test_envelope_gives_the_traces() -> None:
    """A well-formed envelope yields its traces list, sentAt optional."""
    assert parse_envelope(b'{"sentAt": "2026-11-21T12:00:00Z", "traces": [1, 2]}') == [1, 2]
    assert parse_envelope(b'{"traces": []}') == []
