"""Streams stay the SDK's own objects, and their span ends exactly once: exhausted,
closed early, broken out of, dropped unread, failing mid-stream, or read elsewhere."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest

from tests.llm._calls import request
from tests.llm.conftest import FakeLLM, anthropic_client, openai_client
from tracing import AsyncTracing
from tracing._llm import _soft
from tracing._log import RateLimitedWarning

MESSAGES = [{"role": "user", "content": "tell me a story"}]


async def collect_until(condition: Any) -> None:
    """Collect garbage until ``condition()`` holds: a dropped async generator is only
    finalised by a task the loop runs, and what it held is freed on the next pass."""
    for _ in range(100):
        gc.collect()
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def chat_stream(client: Any, model: str = "gpt-chunks8") -> Any:
    return client.chat.completions.create(
        model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )


def anthropic_stream(client: Any, model: str = "claude-chunks8") -> Any:
    return client.messages.create(model=model, max_tokens=64, messages=MESSAGES, stream=True)


async def test_stream_is_the_sdk_stream(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """The caller gets openai.Stream / anthropic.AsyncStream with the HTTP response."""
    sync_client = tracer.instrument(openai_client(fake))
    async_client = tracer.instrument(anthropic_client(fake, is_async=True))
    async with tracer.trace("request"):
        stream = await asyncio.to_thread(chat_stream, sync_client)
        assert type(stream) is openai.Stream
        response = type(stream.response)  # httpx2 for openai >= 3, httpx before
        assert (response.__module__.split(".")[0], response.__name__) in {
            ("httpx", "Response"),
            ("httpx2", "Response"),
        }
        await asyncio.to_thread(list, stream)
        astream = await anthropic_stream(async_client)
        assert type(astream) is anthropic.AsyncStream
        assert [event async for event in astream]


async def test_closed_early_sync(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """close() after two chunks ends the span then, with the text read so far."""
    client = tracer.instrument(openai_client(fake))

    def read_two() -> None:
        stream = chat_stream(client)
        next(stream)
        next(stream)
        stream.close()
        stream.close()  # a second close changes nothing

    async with tracer.trace("request") as trace:
        await asyncio.to_thread(read_two)
    [span] = trace.spans
    assert span.end_time is not None
    assert span.status == "ok"
    assert span.metadata["stream_incomplete"] == "closed"
    assert span.metadata["usage_missing"] is True
    assert span.llm_usage is None
    assert span.output == {"role": "assistant", "content": "You "}


async def test_with_block_left_early_async(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """Leaving ``async with stream`` after one event ends the span as closed."""
    client = tracer.instrument(anthropic_client(fake, is_async=True))
    async with tracer.trace("request") as trace:
        async with await anthropic_stream(client) as stream:
            async for _event in stream:
                break
        assert trace.spans[0].end_time is not None
    [span] = trace.spans
    assert span.metadata["stream_incomplete"] == "closed"
    assert span.metadata["gen_ai.response.model"] == "claude-chunks8-2025-01-01"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_break_then_dropped(fake: FakeLLM, tracer: AsyncTracing, is_async: bool) -> None:
    """``break`` out of the loop and drop the stream: the span ends when it is collected."""
    client = tracer.instrument(openai_client(fake, is_async=is_async))
    async with tracer.trace("request") as trace:
        if is_async:
            stream = await chat_stream(client)
            async for _chunk in stream:
                break
        else:
            stream = chat_stream(client)  # the fake server has its own thread
            for _chunk in stream:
                break
        assert trace.spans[0].end_time is None  # still open while the stream is alive
        del stream, _chunk
        [span] = trace.spans
        await collect_until(lambda: span.end_time is not None)
        assert span.metadata["stream_incomplete"] in ("closed", "abandoned")
        assert span.metadata["time_to_first_token"] > 0


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_dropped_unread(fake: FakeLLM, tracer: AsyncTracing, is_async: bool) -> None:
    """A stream never read and garbage-collected ends its span as abandoned."""
    client = tracer.instrument(anthropic_client(fake, is_async=is_async))
    async with tracer.trace("request") as trace:
        if is_async:
            stream = await anthropic_stream(client)
            await stream.response.aclose()  # what a careful caller does; not a stream close
        else:
            stream = anthropic_stream(client)
            stream.response.close()
        del stream
        [span] = trace.spans
        await collect_until(lambda: span.end_time is not None)
        assert span.metadata["stream_incomplete"] in ("closed", "abandoned")
        assert "time_to_first_token" not in span.metadata


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_fails_mid_stream(
    fake: FakeLLM, tracer: AsyncTracing, kind: str, is_async: bool
) -> None:
    """An error event after two chunks: the SDK's exception reaches the caller and the
    span has status error with its class and message."""
    error: type[Exception]
    if kind == "openai":
        client = tracer.instrument(openai_client(fake, is_async=is_async))
        error = openai.APIError

        def start() -> Any:
            return chat_stream(client, "gpt-fail")
    else:
        client = tracer.instrument(anthropic_client(fake, is_async=is_async))
        error = anthropic.APIStatusError

        def start() -> Any:
            return anthropic_stream(client, "claude-fail")

    seen: list[Any] = []

    async def read() -> None:
        if is_async:
            async for item in await start():
                seen.append(item)
        else:
            await asyncio.to_thread(lambda: seen.extend(start()))

    async with tracer.trace("request") as trace:
        with pytest.raises(error) as raised:
            await read()
    [span] = trace.spans
    assert span.status == "error"
    assert span.error == f"{type(raised.value).__name__}: {raised.value}"
    assert span.metadata["error.type"] == type(raised.value).__name__
    assert seen  # the chunks before the failure reached the caller


@pytest.mark.parametrize("model", ["gpt-fail", "gpt-broken"], ids=["error", "failed"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_a_responses_stream_that_says_it_failed(
    fake: FakeLLM, tracer: AsyncTracing, model: str, is_async: bool
) -> None:
    """A Responses stream ending in an ``error`` event or ``response.failed``, for which
    the SDK raises nothing: the caller reads it to its end, and the span has status
    error with the event's code and message."""
    client = tracer.instrument(openai_client(fake, is_async=is_async))

    def start() -> Any:
        return client.responses.create(model=model, input="tell me a story", stream=True)

    async with tracer.trace("request") as trace:
        events = await read_all(start, is_async)
    kinds = [event.type for event in events]
    assert kinds[-1] == ("error" if model == "gpt-fail" else "response.failed")
    assert "response.output_text.delta" in kinds
    [span] = trace.spans
    assert span.status == "error"
    assert span.error == "StreamFailed: server_error: fake failure"
    assert span.metadata["error.type"] == "StreamFailed"


def fresh_failure_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failures are logged once per process, repeats once per 5 s: fresh state, so what
    ran before (the other parameter, a rerun in the same process) cannot hide the line."""
    monkeypatch.setattr(_soft, "_seen", set())
    monkeypatch.setattr(_soft, "_repeats", RateLimitedWarning(_soft._repeats.message))


async def read_all(start: Callable[[], Any], is_async: bool) -> list[Any]:
    """Every item of the stream ``start()`` makes: awaited and read with ``async for``,
    or made and read in a thread (a sync client blocks)."""
    if is_async:
        return [item async for item in await start()]
    return await asyncio.to_thread(lambda: list(start()))


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_unreadable_chunk_leaves_the_stream_alone(
    fake: FakeLLM,
    tracer: AsyncTracing,
    is_async: bool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chunk the accumulator cannot read (``choices: null``) is logged; the caller
    still gets every chunk, and the span ends ok without the rest of the stream."""
    fresh_failure_log(monkeypatch)
    client = tracer.instrument(openai_client(fake, is_async=is_async))
    plain = openai_client(fake, is_async=is_async)
    async with tracer.trace("request") as trace:
        seen = await read_all(lambda: chat_stream(client, "gpt-odd-chunks4"), is_async)
    expected = await read_all(lambda: chat_stream(plain, "gpt-odd-chunks4"), is_async)
    assert [chunk.model_dump() for chunk in seen] == [chunk.model_dump() for chunk in expected]
    assert any(chunk.choices is None for chunk in seen)
    [span] = trace.spans
    assert span.status == "ok"
    assert span.end_time is not None
    assert span.metadata["usage_missing"] is True  # the usage chunk came after the odd one
    assert span.llm_usage is None
    assert "read an LLM stream chunk; the rest of that stream is not recorded" in caplog.text


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_unreadable_anthropic_event_leaves_the_stream_alone(
    fake: FakeLLM,
    tracer: AsyncTracing,
    is_async: bool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A text delta event the accumulator cannot read (``delta: null``, past the first
    event: the sync reader's inlined path) is logged; the caller still gets every event,
    and the span ends ok with only what was read before it."""
    fresh_failure_log(monkeypatch)
    client = tracer.instrument(anthropic_client(fake, is_async=is_async))
    plain = anthropic_client(fake, is_async=is_async)
    async with tracer.trace("request") as trace:
        seen = await read_all(lambda: anthropic_stream(client, "claude-odd"), is_async)
    expected = await read_all(lambda: anthropic_stream(plain, "claude-odd"), is_async)
    assert [event.to_dict() for event in seen] == [event.to_dict() for event in expected]
    assert any(event.type == "content_block_delta" and event.delta is None for event in seen)
    [span] = trace.spans
    assert span.status == "ok"
    assert span.end_time is not None
    assert span.metadata["usage_missing"] is True  # message_delta's usage came after it
    assert span.output is None
    assert "read an LLM stream chunk; the rest of that stream is not recorded" in caplog.text


async def test_read_in_another_task_and_thread(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """A stream made in one task and read in another (and a sync one in a thread) ends
    its span in the trace that was current when the call was made."""
    aclient = tracer.instrument(openai_client(fake, is_async=True))
    client = tracer.instrument(openai_client(fake))
    async with tracer.trace("request") as trace:
        astream = await chat_stream(aclient)
        stream = chat_stream(client)  # made on the loop thread, read in a worker thread

    async def consume() -> int:
        return len([chunk async for chunk in astream])

    assert await asyncio.create_task(consume()) > 0
    assert len(await asyncio.to_thread(list, stream)) > 0
    assert len(trace.spans) == 2
    for span in trace.spans:
        assert span.end_time is not None
        # The trace was queued before the streams were read: what it holds is what it had.


async def test_ends_once(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """After the stream is exhausted, close() and collection change nothing."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    async with tracer.trace("request") as trace:
        stream = await chat_stream(client)
        chunks = [chunk async for chunk in stream]
        [span] = trace.spans
        ended, metadata = span.end_time, dict(span.metadata)
        await stream.close()
        del stream
        gc.collect()
    assert chunks
    assert span.end_time == ended
    assert span.metadata == metadata
    assert "stream_incomplete" not in metadata
    assert span.llm_usage is not None


@pytest.mark.parametrize("layout", ["", "-together"], ids=["one-per-chunk", "together"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_several_choices_streamed(
    fake: FakeLLM, tracer: AsyncTracing, is_async: bool, layout: str
) -> None:
    """``n > 1``: each chunk carries one choice with its index, or (``together``) every
    choice at once (the readers' inlined path takes a lone choice 0's text only); the span
    records every choice's text, in order, and each finish reason, as the uninstrumented
    stream told them."""
    client = tracer.instrument(openai_client(fake, is_async=is_async))
    model = f"gpt-choices2{layout}-chunks6"
    async with tracer.trace("request") as trace:
        seen = await read_all(lambda: chat_stream(client, model), is_async)
    if layout:  # the state the case is about: chunks with both choices
        assert any(len(chunk.choices) == 2 for chunk in seen)
    else:
        assert all(len(chunk.choices) == 1 for chunk in seen if chunk.choices)
    texts: dict[int, str] = {}
    finishes = []
    for chunk in seen:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert sorted(texts) == [0, 1]
    assert texts[1] == "(1) " + texts[0] != "(1) "
    [span] = trace.spans
    assert span.output == [
        {"role": "assistant", "content": texts[0]},
        {"role": "assistant", "content": texts[1]},
    ]
    assert span.metadata["gen_ai.response.finish_reasons"] == finishes == ["stop", "length"]
    assert span.llm_usage is not None
    assert span.llm_usage.completion_tokens == fake.served[-1]["completion_tokens"]


async def test_several_choices_not_streamed(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """``n > 1`` without a stream: every choice's message, in order."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    async with tracer.trace("request") as trace:
        response = await client.chat.completions.create(
            model="gpt-choices3-chunks4", messages=MESSAGES, n=3
        )
    assert [choice.index for choice in response.choices] == [0, 1, 2]
    [span] = trace.spans
    assert span.output == [
        {"role": "assistant", "content": choice.message.content} for choice in response.choices
    ]
    assert span.output[2]["content"].startswith("(2) ")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_usage_on_a_text_chunk(fake: FakeLLM, tracer: AsyncTracing, is_async: bool) -> None:
    """Usage sent on the last text chunk, with no usage-only chunk after it (some
    OpenAI-compatible servers): recorded, and that chunk's text too."""
    client = tracer.instrument(openai_client(fake, is_async=is_async))
    async with tracer.trace("request") as trace:
        seen = await read_all(lambda: chat_stream(client, "gpt-usageinline-chunks5"), is_async)
    carrying = [chunk for chunk in seen if chunk.usage is not None]
    assert len(carrying) == 1
    assert carrying[0].choices[0].delta.content
    assert not any(chunk.choices == [] for chunk in seen)
    served = fake.served[-1]
    [span] = trace.spans
    assert span.llm_usage is not None
    assert span.llm_usage.prompt_tokens == served["prompt_tokens"]
    assert span.llm_usage.completion_tokens == served["completion_tokens"]
    assert span.output == {"role": "assistant", "content": served["reply"]}


# Each streamed call kind (tests/llm/_calls.py) and the fake server's model for it.
STREAMED = {
    "chat": "gpt-chunks8",
    "responses": "gpt-chunks8",
    "completions": "gpt-chunks8",
    "messages": "claude-chunks8",
}


def _open(shape: str, client: Any) -> Any:
    """A stream of ``shape`` (a call kind, or ``<kind>-helper``: the SDK's ``stream()``
    helper, a context manager); a coroutine for an async client's plain call."""
    if shape == "chat-helper":
        return client.chat.completions.stream(model="gpt-chunks8", messages=MESSAGES)
    if shape == "messages-helper":
        return client.messages.stream(model="claude-chunks8", max_tokens=64, messages=MESSAGES)
    return request(shape, client, model=STREAMED[shape], text="tell me a story", stream=True)


def _response_of(stream: Any) -> Any:
    # openai's helper stream keeps its HTTP response as _response
    response = getattr(stream, "response", None)
    return stream._response if response is None else response


def _sync_read(shape: str, client: Any) -> tuple[int, Any]:
    """Read a stream to its end, then drop it: how many items, and a weak reference to
    its HTTP response."""
    if shape.endswith("-helper"):
        with _open(shape, client) as stream:
            count = len(list(stream))
    else:
        stream = _open(shape, client)
        count = len(list(stream))
    ref = weakref.ref(_response_of(stream))
    del stream
    return count, ref


async def _async_read(shape: str, client: Any) -> tuple[int, Any]:
    """``_sync_read`` for async clients."""
    if shape.endswith("-helper"):
        async with _open(shape, client) as stream:
            count = len([item async for item in stream])
    else:
        stream = await _open(shape, client)
        count = len([item async for item in stream])
    ref = weakref.ref(_response_of(stream))
    del stream
    return count, ref


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("shape", [*STREAMED, "chat-helper", "messages-helper"])
async def test_response_freed_without_the_collector(
    fake: FakeLLM, tracer: AsyncTracing, shape: str, is_async: bool
) -> None:
    """A stream read to its end and dropped frees its HTTP response (its request, headers
    and buffers) at once, as the uninstrumented SDK does: the watch leaves no reference
    cycle that only the garbage collector (or nothing, with it disabled) would free."""
    make = anthropic_client if shape.startswith("messages") else openai_client
    plain, traced = make(fake, is_async=is_async), tracer.instrument(make(fake, is_async=is_async))
    gc.collect()
    gc.disable()
    try:
        async with tracer.trace("request") as trace:
            for client in (plain, traced):
                if is_async:
                    count, ref = await _async_read(shape, client)
                else:
                    count, ref = await asyncio.to_thread(_sync_read, shape, client)
                assert count > 3
                for _ in range(10):  # an unfinished async generator: closed by a loop task
                    if ref() is None:
                        break
                    await asyncio.sleep(0)
                assert ref() is None, "plain" if client is plain else "traced"
    finally:
        gc.enable()
    [span] = trace.spans
    assert span.end_time is not None
    assert span.llm_usage is not None


@pytest.mark.parametrize("after", [False, True], ids=["before-us", "before-and-after-us"])
async def test_close_set_by_another_library_is_kept(
    fake: FakeLLM, tracer: AsyncTracing, after: bool
) -> None:
    """A ``close`` another library set on the response before us (here an httpx event
    hook) is called through ours while the stream is watched, and is the response's
    ``close`` again once the span has ended; one set after us (wrapping ours) stays."""
    closes: list[str] = []
    theirs: list[Any] = []

    def wrap(response: Any, label: str) -> None:
        original = response.close

        def close() -> None:
            closes.append(label)
            original()

        response.close = close
        theirs.append(close)

    http = openai.DefaultHttpxClient(event_hooks={"response": [lambda r: wrap(r, "before")]})
    client = tracer.instrument(openai_client(fake, http_client=http))

    def read_two_then_close() -> Any:
        stream = chat_stream(client)
        next(stream)
        next(stream)
        response = stream.response
        assert response.close is not theirs[0]  # ours, while the span is open
        if after:
            wrap(response, "after")
        stream.close()
        return response

    async with tracer.trace("request") as trace:
        response = await asyncio.to_thread(read_two_then_close)
    [span] = trace.spans
    assert span.metadata["stream_incomplete"] == "closed"
    assert closes == (["after", "before"] if after else ["before"])
    assert response.__dict__["close"] is theirs[-1]
