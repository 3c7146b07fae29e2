"""@tracer.observe(): traces and spans from decorated sync and async functions."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from datetime import UTC, datetime
from typing import Any, assert_type

import pydantic
import pytest

from tracing import AsyncTracing, current_span, current_trace
from tracing._capture import MAX_CAPTURE_BYTES

from .conftest import Recorder, delivered


async def test_async_call_outside_a_trace_is_a_trace(
    tracer: AsyncTracing, recorder: Recorder
) -> None:
    """An outermost async call is a trace: qualname, bound input with defaults, output."""

    @tracer.observe()
    async def summarize(text: str, limit: int = 10, *, style: str = "short") -> str:
        return text[:limit]

    assert await summarize("hello world", style="long") == "hello worl"
    (trace,) = await delivered(tracer, recorder)
    assert trace["name"].endswith("summarize")
    assert trace["name"] == summarize.__qualname__
    assert trace["input"] == {"text": "hello world", "limit": 10, "style": "long"}
    assert trace["output"] == "hello worl"
    assert trace["status"] == "ok"
    assert trace["spans"] == []


async def test_sync_call_inside_a_loop_is_a_trace(tracer: AsyncTracing, recorder: Recorder) -> None:
    """A sync function called from async code (no trace current) becomes a trace."""

    @tracer.observe("add")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    (trace,) = await delivered(tracer, recorder)
    assert (trace["name"], trace["input"], trace["output"]) == ("add", {"a": 2, "b": 3}, 5)


async def test_nested_calls_are_spans_with_parents(
    tracer: AsyncTracing, recorder: Recorder
) -> None:
    """Inner decorated calls, async and sync, are spans nested under the current span."""

    @tracer.observe("leaf")
    def leaf(x: int) -> int:
        return x + 1

    @tracer.observe("middle")
    async def middle(x: int) -> int:
        return leaf(x) * 2

    @tracer.observe("root")
    async def root() -> list[int]:
        return [await middle(1), leaf(0)]

    assert await root() == [4, 1]
    (trace,) = await delivered(tracer, recorder)
    spans = trace["spans"]
    assert [s["name"] for s in spans] == ["middle", "leaf", "leaf"]
    middle_span, inner_leaf, top_leaf = spans
    assert middle_span["parentId"] is None
    assert inner_leaf["parentId"] == middle_span["id"]
    assert top_leaf["parentId"] is None
    assert (inner_leaf["input"], inner_leaf["output"]) == ({"x": 1}, 2)
    assert trace["output"] == [4, 1]


async def test_current_trace_and_span_inside_decorated_calls(tracer: AsyncTracing) -> None:
    """Inside a decorated call, current_trace()/current_span() are its trace and span."""
    seen: dict[str, Any] = {}

    @tracer.observe("inner")
    async def inner() -> None:
        seen["inner"] = (current_trace(), current_span())

    @tracer.observe("outer")
    async def outer() -> None:
        seen["outer"] = (current_trace(), current_span())
        await inner()
        seen["after"] = (current_trace(), current_span())

    await outer()
    trace, span = seen["outer"]
    assert trace is not None
    assert trace.name == "outer"
    assert span is None
    assert seen["inner"][0] is trace
    assert seen["inner"][1] is trace.spans[0]
    assert seen["after"] == (trace, None)
    assert (current_trace(), current_span()) == (None, None)


async def test_async_exception_sets_error_and_is_reraised(
    tracer: AsyncTracing, recorder: Recorder
) -> None:
    """An async call that raises: status "error", str(exc), the exception propagates."""

    @tracer.observe("failing")
    async def failing() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        await failing()
    (trace,) = await delivered(tracer, recorder)
    assert (trace["status"], trace["error"]) == ("error", str(KeyError("missing")))
    assert trace["output"] is None


async def test_sync_exception_sets_error_and_is_reraised(
    tracer: AsyncTracing, recorder: Recorder
) -> None:
    """A sync call that raises: status "error", str(exc), the exception propagates."""

    @tracer.observe("failing")
    def failing() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        failing()
    (trace,) = await delivered(tracer, recorder)
    assert (trace["status"], trace["error"]) == ("error", "bad input")


async def test_span_error_caught_by_caller_leaves_trace_ok(
    tracer: AsyncTracing, recorder: Recorder
) -> None:
    """A span that raised is an error span; the trace is ok if the caller handled it."""

    @tracer.observe("step")
    async def step() -> None:
        raise ValueError("bad step")

    @tracer.observe("run")
    async def run() -> str:
        with pytest.raises(ValueError, match="bad step"):
            await step()
        return "recovered"

    assert await run() == "recovered"
    (trace,) = await delivered(tracer, recorder)
    assert trace["status"] == "ok"
    assert trace["output"] == "recovered"
    (span,) = trace["spans"]
    assert (span["status"], span["error"]) == ("error", "bad step")


async def test_self_and_cls_are_left_out(tracer: AsyncTracing, recorder: Recorder) -> None:
    """Methods and classmethods record their arguments without self or cls."""

    class Agent:
        @tracer.observe()
        async def act(self, goal: str) -> str:
            return goal.upper()

        @classmethod
        @tracer.observe()
        def build(cls, size: int = 3) -> int:
            return size

    await Agent().act("go")
    Agent.build()
    first, second = await delivered(tracer, recorder)
    assert first["name"].endswith("Agent.act")
    assert first["input"] == {"goal": "go"}
    assert second["input"] == {"size": 3}


async def test_capture_can_be_turned_off(tracer: AsyncTracing, recorder: Recorder) -> None:
    """capture_input=False and capture_output=False record nothing for that side."""

    @tracer.observe("no-input", capture_input=False)
    async def no_input(secret: str) -> str:
        return "visible"

    @tracer.observe("no-output", capture_output=False)
    def no_output(x: int) -> str:
        return "secret"

    await no_input("hunter2")
    no_output(1)
    first, second = await delivered(tracer, recorder)
    assert (first["input"], first["output"]) == (None, "visible")
    assert (second["input"], second["output"]) == ({"x": 1}, None)


async def test_mask_sees_captured_values_once(recorder: Recorder) -> None:
    """Captured input and output go through mask once each, for the trace and its spans."""
    calls: list[Any] = []

    def mask(value: Any) -> Any:
        calls.append(value)
        return "***" if isinstance(value, str) else {k: "***" for k in value}

    tracer = AsyncTracing(endpoint=recorder.url, flush_at=10_000, flush_interval=0, mask=mask)

    @tracer.observe("child")
    def child(token: str) -> str:
        return token

    @tracer.observe("parent")
    async def parent(token: str) -> str:
        return child(token)

    await parent("sk-123")
    await tracer.shutdown()
    (trace,) = recorder.received
    assert trace["input"] == {"token": "***"}
    assert trace["output"] == "***"
    assert (trace["spans"][0]["input"], trace["spans"][0]["output"]) == ({"token": "***"}, "***")
    assert len(calls) == 4
    assert "sk-123" not in str(recorder.received)


async def test_huge_values_are_truncated(tracer: AsyncTracing, recorder: Recorder) -> None:
    """An argument or result over the cap becomes a marked, truncated string."""

    @tracer.observe("big")
    async def big(blob: str, small: int) -> dict[str, str]:
        return {"echo": blob}

    blob = "x" * 1_000_000
    assert (await big(blob, 7))["echo"] is blob
    (trace,) = await delivered(tracer, recorder)
    captured = trace["input"]["blob"]
    assert isinstance(captured, str)
    assert len(captured.encode()) <= MAX_CAPTURE_BYTES
    assert captured.startswith('"xxxx')
    assert captured.endswith("...[truncated by tracing: 1000002 bytes of JSON]")
    assert trace["input"]["small"] == 7
    assert trace["output"].endswith("...[truncated by tracing: 1000011 bytes of JSON]")


async def test_inputs_are_snapshots(tracer: AsyncTracing, recorder: Recorder) -> None:
    """What a call received is recorded as it was, not as it is after later mutation."""
    items = [1, 2]

    @tracer.observe("mutating")
    def mutating(values: list[int], extra: object) -> None:
        values.append(3)

    mutating(items, object())
    (trace,) = await delivered(tracer, recorder)
    assert trace["input"]["values"] == [1, 2]
    assert trace["input"]["extra"].startswith("<object object at")


async def test_wraps_keeps_metadata_and_kind(tracer: AsyncTracing) -> None:
    """The wrapper keeps name, docstring, signature and coroutine-function-ness."""

    async def original(a: int, b: str = "x") -> str:
        """Docs."""
        return b * a

    def plain(a: int) -> int:
        return a

    wrapped = tracer.observe()(original)
    wrapped_plain = tracer.observe(plain)
    assert wrapped.__name__ == "original"
    assert wrapped.__doc__ == "Docs."
    assert wrapped.__wrapped__ is original  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert inspect.iscoroutinefunction(wrapped)
    assert not inspect.iscoroutinefunction(wrapped_plain)
    assert_type(await wrapped(2), str)
    assert_type(wrapped_plain(1), int)
    assert await functools.partial(wrapped, 2)(b="yz") == "yzyz"  # still a coroutine function


async def test_sync_calls_from_threads(tracer: AsyncTracing, recorder: Recorder) -> None:
    """On a plain thread a call is its own trace; via to_thread inside a trace, a span."""

    @tracer.observe("work")
    def work(n: int) -> int:
        return n * n

    @tracer.observe("request")
    async def request() -> int:
        return await asyncio.to_thread(work, 3)

    thread = threading.Thread(target=work, args=(4,))
    thread.start()
    await asyncio.to_thread(thread.join)
    assert await request() == 9
    traces = await delivered(tracer, recorder)
    by_name = {t["name"]: t for t in traces}
    assert by_name["work"]["output"] == 16
    assert [s["name"] for s in by_name["request"]["spans"]] == ["work"]
    assert by_name["request"]["spans"][0]["output"] == 9


async def test_disabled_tracer_only_calls_through(recorder: Recorder) -> None:
    """With enabled=False the function runs as is, with no trace current and none sent."""
    tracer = AsyncTracing(endpoint=recorder.url, enabled=False)

    @tracer.observe()
    async def f() -> object:
        return current_trace()

    assert await f() is None
    await tracer.shutdown()
    assert recorder.received == []


def test_bad_name_and_generators_are_refused() -> None:
    """An empty name raises ValueError; generator functions, sync and async, TypeError."""
    tracer = AsyncTracing(enabled=False)
    with pytest.raises(ValueError, match="name"):
        tracer.observe("")

    def gen() -> Any:
        yield 1

    async def agen() -> Any:
        yield 1

    with pytest.raises(TypeError, match=r"generator function .*\.gen;"):
        tracer.observe()(gen)
    with pytest.raises(TypeError, match=r"generator function .*\.agen;"):
        tracer.observe()(agen)
    with pytest.raises(TypeError, match="generator"):
        tracer.observe(agen)


async def test_pydantic_models_are_captured_as_their_dump(
    tracer: AsyncTracing, recorder: Recorder
) -> None:
    """A pydantic model argument or result is recorded as ``model_dump(mode="json")``."""

    class Query(pydantic.BaseModel):
        text: str
        when: datetime
        tags: set[str]

    class Answer(pydantic.BaseModel):
        score: float

    @tracer.observe("ask")
    async def ask(query: Query) -> Answer:
        return Answer(score=0.5)

    when = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    await ask(Query(text="why?", when=when, tags={"a"}))
    (trace,) = await delivered(tracer, recorder)
    assert trace["input"] == {
        "query": {"text": "why?", "when": "2026-11-21T12:00:00Z", "tags": ["a"]}
    }
    assert trace["output"] == {"score": 0.5}


async def test_bare_decorator_captures_input_and_output(
    tracer: AsyncTracing, recorder: Recorder
) -> None:
    """``@tracer.observe`` without parentheses records what ``@tracer.observe()`` does."""

    @tracer.observe
    async def double(x: int) -> int:
        return 2 * x

    assert await double(21) == 42
    (trace,) = await delivered(tracer, recorder)
    assert (trace["name"], trace["input"], trace["output"]) == (
        double.__qualname__,
        {"x": 21},
        42,
    )
