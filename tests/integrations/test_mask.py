"""mask: once per value, when the trace is queued; a raising mask nulls that value."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest

from tests._server import FaultServer
from tests.conftest import MakeTracer
from tracing import AsyncTracing, DeliveryError, Span, Trace

from .conftest import Recorder


async def test_mask_runs_once_per_value_of_trace_and_spans(recorder: Recorder) -> None:
    """input, output and each metadata value, of the trace and spans, masked exactly once."""
    calls: Counter[str] = Counter()

    def mask(value: Any) -> Any:
        calls[repr(value)] += 1
        return f"masked({value})"

    tracer = AsyncTracing(endpoint=recorder.url, mask=mask, flush_at=10_000, flush_interval=0)
    async with tracer.trace("t", input="in", metadata={"a": "1", "b": "2"}, tags=["tag"]) as t:
        with t.span("s", input="span-in", metadata={"c": "3"}) as span:
            span.end(output="span-out")
        t.span("empty").end()
        t.output = "out"
        t.error = "kept as is"
    await tracer.shutdown()
    (trace,) = recorder.received
    assert (trace["input"], trace["output"]) == ("masked(in)", "masked(out)")
    assert trace["metadata"] == {"a": "masked(1)", "b": "masked(2)"}
    assert (trace["name"], trace["tags"], trace["error"]) == ("t", ["tag"], "kept as is")
    first, empty = trace["spans"]
    assert (first["input"], first["output"]) == ("masked(span-in)", "masked(span-out)")
    assert first["metadata"] == {"c": "masked(3)"}
    assert (empty["input"], empty["output"]) == (None, None)
    assert set(calls.values()) == {1}
    assert len(calls) == 7


async def test_retries_and_requeues_never_mask_again(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A batch retried, then requeued and sent again, carries values masked once."""
    calls: list[Any] = []

    def mask(value: Any) -> Any:
        calls.append(value)
        return f"masked({value})"

    tracer = make_tracer(mask=mask, max_retries=1, flush_at=100)
    server.respond_with(503, times=2)  # the first flush: an attempt and its retry fail
    assert tracer.enqueue(Trace("t", id="t-0", input="secret", metadata={"k": "v"}))
    with pytest.raises(DeliveryError):
        await tracer.flush()
    await tracer.flush()
    assert tracer.stats().retries == 1
    assert len(server.requests) == 3
    assert calls == ["secret", "v"]
    for request in server.requests:
        (sent,) = request.traces
        assert (sent["input"], sent["metadata"]) == ("masked(secret)", {"k": "masked(v)"})
    assert server.accepted_ids() == ["t-0"]


async def test_raising_mask_nulls_the_value_and_warns(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """A mask that raises makes that value None and logs a WARNING; others still masked."""

    def mask(value: Any) -> Any:
        if value == "explode":
            raise RuntimeError("mask bug")
        return "ok"

    tracer = AsyncTracing(endpoint=recorder.url, mask=mask, flush_at=10_000, flush_interval=0)
    trace = Trace("t", id="t-1", input="explode", output="fine", metadata={"k": "explode"})
    trace.spans.append(Span("step", id="s-1", input="fine", output="explode"))
    with caplog.at_level(logging.WARNING, logger="tracing"):
        assert tracer.enqueue(trace)
        await tracer.shutdown()
    (sent,) = recorder.received
    assert (sent["input"], sent["output"], sent["metadata"]) == (None, "ok", {"k": None})
    assert (sent["spans"][0]["input"], sent["spans"][0]["output"]) == ("ok", None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # Each line says which record and which field: the trace's input is not a span's.
    assert warnings == [
        "tracing mask raised RuntimeError on the input of trace 't' (t-1); "
        "the value is sent as null",
        "tracing mask raised RuntimeError on the metadata['k'] of trace 't' (t-1); "
        "the value is sent as null",
        "tracing mask raised RuntimeError on the output of span 'step' (s-1) of trace 't' "
        "(t-1); the value is sent as null",
    ]
    warnings_records = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert all("mask raised" in r.getMessage() for r in warnings_records)
    assert all("explode" not in line for line in warnings), "never log payloads"
