"""Trace, Span, LlmUsage and the value classes (``_models``, ``_context``)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from tracing import (
    ApiResponse,
    BatchResult,
    LlmUsage,
    Span,
    Stats,
    Trace,
    current_span,
    current_trace,
)


def test_llm_usage_defaults() -> None:
    """LlmUsage(model, provider) defaults to 0 tokens and 1 API call."""
    usage = LlmUsage("gpt-4o", "openai")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.api_calls_count) == (0, 0, 1)


@pytest.mark.parametrize("field", ["prompt_tokens", "completion_tokens", "api_calls_count"])
def test_llm_usage_rejects_negative_counts(field: str) -> None:
    """Negative token counts raise ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        LlmUsage("m", "p", **{field: -1})


def test_values_are_frozen() -> None:
    """LlmUsage, ApiResponse, BatchResult and Stats are immutable."""
    for value in (
        LlmUsage("m", "p"),
        ApiResponse("id", True, 200, "ok"),
        BatchResult(0, 0, 0, [], []),
        Stats(),
    ):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            value.id = "x"  # type: ignore[union-attr,misc]


def test_trace_defaults() -> None:
    """A new Trace has a generated id, an aware UTC start, status ok and empty collections."""
    trace = Trace("run")
    assert isinstance(trace.id, str)
    assert len(trace.id) >= 16
    assert trace.start_time.tzinfo is not None
    assert trace.start_time.utcoffset() == timedelta(0)
    assert trace.end_time is None
    assert trace.duration is None
    assert trace.status == "ok"
    assert (trace.metadata, trace.tags, trace.spans) == ({}, [], [])


def test_trace_ids_are_unique() -> None:
    """Generated ids do not repeat."""
    assert len({Trace("t").id for _ in range(1000)}) == 1000


def test_trace_built_directly_with_keywords() -> None:
    """Every Trace field can be given as a keyword (the Infinium style)."""
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    trace = Trace(
        "n",
        id="abc",
        description="d",
        start_time=start,
        end_time=start + timedelta(seconds=2.5),
        status="error",
        error="boom",
        input={"q": 1},
        output="o",
        input_summary="is",
        output_summary="os",
        metadata={"k": "v"},
        tags=["a"],
        llm_usage=LlmUsage("m", "p", 1, 2),
        spans=[Span("s")],
    )
    assert trace.id == "abc"
    assert trace.duration == 2.5
    assert trace.spans[0].parent_id is None


def test_times_are_converted_to_utc() -> None:
    """An aware non-UTC time is stored as UTC; a naive one is refused."""
    plus2 = timezone(timedelta(hours=2))
    trace = Trace("t", start_time=datetime(2026, 1, 1, 14, 0, tzinfo=plus2))
    assert trace.start_time == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert trace.start_time.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="timezone-aware"):
        Trace("t", start_time=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"name": ""}, "name"),
        ({"name": "t", "id": ""}, "id"),
        ({"name": "t", "status": "x"}, "status"),
    ],
)
def test_trace_validators(kwargs: dict[str, str], word: str) -> None:
    """Empty name or id and unknown status raise ValueError naming the field."""
    with pytest.raises(ValueError, match=word):
        Trace(**kwargs)  # type: ignore[arg-type]


async def test_end_sets_fields_and_duration() -> None:
    """end() stamps end_time and records output, summary, usage and error."""
    trace = Trace("t")
    usage = LlmUsage("m", "p", 3, 4)
    await trace.end(output="o", output_summary="s", error=RuntimeError("bad"), llm_usage=usage)
    assert trace.end_time is not None
    assert trace.duration is not None
    assert trace.duration >= 0
    assert (trace.output, trace.output_summary, trace.llm_usage) == ("o", "s", usage)
    assert (trace.status, trace.error) == ("error", "bad")


async def test_end_twice_keeps_first_end() -> None:
    """A second end() changes nothing."""
    trace = Trace("t")
    await trace.end(output="first")
    first = trace.end_time
    await trace.end(output="second", status="error")
    assert (trace.end_time, trace.output, trace.status) == (first, "first", "ok")


async def test_end_with_bad_status_raises() -> None:
    """end(status=...) other than ok/error raises ValueError naming status."""
    with pytest.raises(ValueError, match="status"):
        await Trace("t").end(status="fine")  # type: ignore[arg-type]


async def test_explicit_status_overrides_error_default() -> None:
    """end(error=..., status="ok") keeps the error text but the given status."""
    trace = Trace("t")
    await trace.end(error="soft", status="ok")
    assert (trace.status, trace.error) == ("ok", "soft")


async def test_end_closes_open_spans() -> None:
    """Spans still open when the trace ends get the trace's end time."""
    trace = Trace("t")
    span = trace.span("s")
    await trace.end()
    assert span.end_time == trace.end_time


def test_span_end_error_and_second_call() -> None:
    """span.end(error=...) sets status error; a second end() is ignored."""
    trace = Trace("t")
    span = trace.span("s", input="i", metadata={"a": 1})
    span.end(error=ValueError("nope"), output="o", llm_usage=LlmUsage("m", "p"))
    end = span.end_time
    span.end(output="later")
    assert (span.status, span.error, span.output, span.end_time) == ("error", "nope", "o", end)
    assert (span.input, span.metadata) == ("i", {"a": 1})


def test_with_span_records_exception_and_reraises() -> None:
    """An exception leaving ``with span`` sets status error with its message and propagates."""
    trace = Trace("t")
    with pytest.raises(KeyError), trace.span("s") as span:
        raise KeyError("missing")
    assert span.status == "error"
    assert span.error == "'missing'"
    assert span.end_time is not None


def test_nested_spans_get_parent_ids() -> None:
    """Spans opened inside a span's ``with`` block get it as parent."""
    trace = Trace("t")
    with trace.span("a") as a:
        assert current_span() is a
        with trace.span("b") as b:
            c = trace.span("c")
        d = trace.span("d")
    e = trace.span("e")
    assert current_span() is None
    assert a.parent_id is None
    assert b.parent_id == a.id
    assert c.parent_id == b.id
    assert d.parent_id == a.id
    assert e.parent_id is None
    assert [s.name for s in trace.spans] == ["a", "b", "c", "d", "e"]


def test_span_of_another_trace_is_not_a_parent() -> None:
    """The current span only parents spans of its own trace."""
    one, two = Trace("one"), Trace("two")
    with one.span("a"):
        other = two.span("b")
    assert other.parent_id is None


async def test_async_with_span() -> None:
    """Spans work as ``async with`` and nest the same way."""
    trace = Trace("t")
    async with trace.span("a") as a, trace.span("b") as b:
        pass
    assert b.parent_id == a.id
    assert a.end_time is not None


async def test_spans_per_task_keep_their_own_parent() -> None:
    """Concurrent tasks each nest under their own current span (contextvars)."""
    trace = Trace("t")
    ready = asyncio.Event()
    entered = 0

    async def worker(name: str) -> tuple[Span, Span]:
        nonlocal entered
        with trace.span(name) as outer:
            entered += 1
            if entered == 2:
                ready.set()
            await ready.wait()  # both tasks are inside their span now
            inner = trace.span(name + ".inner")
        return outer, inner

    (a, a_inner), (b, b_inner) = await asyncio.gather(worker("a"), worker("b"))
    assert a_inner.parent_id == a.id
    assert b_inner.parent_id == b.id


async def test_trace_is_current_inside_async_with() -> None:
    """current_trace() is the trace inside ``async with`` and None after."""
    trace = Trace("t")
    assert current_trace() is None
    async with trace as t:
        assert current_trace() is trace is t
        seen = await asyncio.create_task(_current())
        assert seen is trace
    assert current_trace() is None


async def _current() -> Trace | None:
    return current_trace()


async def test_span_left_in_another_task_still_ends() -> None:
    """A span entered in one task and left in another ends without raising into the host."""
    trace = Trace("t")
    span = trace.span("s")
    await asyncio.create_task(_enter(span))
    span.__exit__(None, None, None)  # this context never saw the set() of that token
    assert span.end_time is not None
    assert span.status == "ok"


async def _enter(span: Span) -> None:
    span.__enter__()


NAIVE = datetime(2026, 1, 1, 12, 0)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Trace("t", start_time=NAIVE),
        lambda: Trace("t", start_time=datetime(2026, 1, 1, tzinfo=UTC), end_time=NAIVE),
        lambda: Span("s", start_time=NAIVE),
        lambda: Span("s", start_time=datetime(2026, 1, 1, tzinfo=UTC), end_time=NAIVE),
    ],
    ids=["trace start", "trace end", "span start", "span end"],
)
def test_naive_datetimes_are_refused(build: Any) -> None:
    """A naive start or end time on a Trace or a Span raises ValueError: it would
    otherwise be guessed as UTC."""
    with pytest.raises(ValueError, match="timezone-aware"):
        build()


def test_only_the_tracers_unended_traces_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    """A disabled tracer's trace, a Trace built by hand, an ended one, one whose
    construction failed: none is reported when it dies (and none raises in __del__)."""
    from tracing import AsyncTracing
    from tracing._log import flush_never_ended

    flush_never_ended()  # whatever earlier tests left behind is logged before we look
    with caplog.at_level(logging.WARNING, logger="tracing"):
        AsyncTracing(enabled=False).trace("disabled")
        Trace("by-hand")
        with pytest.raises(ValueError, match="name"):
            Trace("")
        tracer = AsyncTracing(endpoint="http://127.0.0.1:9", flush_interval=0)
        trace = tracer.trace("ended")
        trace._finish()
        del trace
        tracer.trace("forgotten", id="f-1")
        flush_never_ended()  # the rate limit may hold it back: shutdown() would log it
    (line,) = [r.getMessage() for r in caplog.records if "never ended" in r.getMessage()]
    assert "tracing: 1 trace(s) were never ended" in line
    assert "'forgotten' (f-1)" in line
