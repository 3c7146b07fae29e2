"""A stream read after the block that made it ended: its trace waits for it, then goes
out with the stream's text, usage and end (tracing/_holds.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from tests.integrations.conftest import Recorder
from tests.llm.conftest import FakeLLM, anthropic_client, openai_client
from tracing import AsyncTracing

MESSAGES = [{"role": "user", "content": "stream it later"}]


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def open_stream(sdk: str, client: Any) -> Any:
    if sdk == "openai":
        return client.chat.completions.create(
            model="gpt-chunks6",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    return client.messages.create(
        model="claude-chunks6", max_tokens=64, messages=MESSAGES, stream=True
    )


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_a_stream_returned_from_an_observed_function(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder, sdk: str
) -> None:
    """``@tracer.observe()`` returns the stream and its caller reads it: the trace is
    queued when the stream ends, not when the function returns, and its span has the
    stream's output and usage, status ok, and an end within the trace's."""
    make = openai_client if sdk == "openai" else anthropic_client
    client = tracer.instrument(make(fake, is_async=True))

    @tracer.observe()
    async def start_answer() -> Any:
        return await open_stream(sdk, client)

    stream = await start_answer()
    assert tracer.stats().enqueued == 0  # the function returned; the stream holds its trace
    chunks = [chunk async for chunk in stream]
    assert chunks
    await tracer.flush()
    [trace] = recorder.received
    [span] = trace["spans"]
    served = fake.served[0]
    assert span["status"] == "ok"
    assert span["llmUsage"]["promptTokens"] == served["prompt_tokens"]
    assert span["llmUsage"]["completionTokens"] == served["completion_tokens"]
    assert "usage_missing" not in span["metadata"]
    assert "stream_incomplete" not in span["metadata"]
    text = span["output"] if isinstance(span["output"], str) else str(span["output"])
    assert served["reply"].strip() in text
    assert parse(span["startTime"]) >= parse(trace["startTime"])
    assert parse(span["endTime"]) <= parse(trace["endTime"])
    assert tracer.stats().enqueued == 1


async def test_a_stream_read_in_another_thread_after_the_block(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """A sync stream made inside ``async with tracer.trace()`` and read in a worker
    thread after the block: the trace waits for it and is queued from that thread."""
    client = tracer.instrument(openai_client(fake))
    async with tracer.trace("request"):
        stream = await asyncio.to_thread(open_stream, "openai", client)
    assert tracer.stats().enqueued == 0
    chunks = await asyncio.to_thread(list, stream)
    assert chunks
    await tracer.flush()
    [trace] = recorder.received
    [span] = trace["spans"]
    assert span["llmUsage"]["promptTokens"] == fake.served[0]["prompt_tokens"]
    assert parse(span["endTime"]) <= parse(trace["endTime"])


async def test_an_unread_stream_does_not_keep_its_trace_past_shutdown(
    fake: FakeLLM, recorder: Recorder
) -> None:
    """A stream never read nor dropped: ``shutdown()`` queues the waiting trace as it is
    (the span without the stream's usage) and delivers it; nothing is left behind."""
    tracer = AsyncTracing(endpoint=recorder.url, flush_at=10_000, flush_interval=0)
    client = tracer.instrument(openai_client(fake, is_async=True))
    async with tracer.trace("request") as made:
        stream = await open_stream("openai", client)
    assert tracer.stats().enqueued == 0
    stats = await tracer.shutdown(timeout=10)
    assert (stats.enqueued, stats.sent) == (1, 1)
    [trace] = recorder.received
    assert trace["id"] == made.id
    [span] = trace["spans"]
    assert span["name"] == "chat gpt-chunks6"
    assert span["metadata"]["stream_incomplete"] == "shutdown"
    assert span["endTime"] is not None
    await stream.close()


async def test_two_streams_hold_their_trace_until_both_end(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """Two streams of one trace, read one after the other after the block: the trace is
    queued once, when the second ends, with both spans' usage."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    async with tracer.trace("request"):
        first = await open_stream("openai", client)
        second = await open_stream("openai", client)
    _ = [chunk async for chunk in first]
    assert tracer.stats().enqueued == 0  # the second still holds it
    _ = [chunk async for chunk in second]
    assert tracer.stats().enqueued == 1
    await tracer.flush()
    [trace] = recorder.received
    assert [span["llmUsage"]["promptTokens"] > 0 for span in trace["spans"]] == [True, True]


async def test_a_held_trace_is_queued_once(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """``enqueue()`` of a trace its stream holds: True once (it waits for the stream),
    then False, from this tracer or another, which sends nothing of it."""
    other = AsyncTracing(endpoint=recorder.url, flush_at=10_000, flush_interval=0)
    client = tracer.instrument(openai_client(fake, is_async=True))
    async with tracer.trace("request") as made:
        stream = await open_stream("openai", client)
        assert tracer.enqueue(made) is True
        assert tracer.enqueue(made) is False
        assert other.enqueue(made) is False
    _ = [chunk async for chunk in stream]
    await tracer.flush()
    await other.flush()
    [trace] = recorder.received
    [span] = trace["spans"]
    assert span["llmUsage"]["promptTokens"] == fake.served[0]["prompt_tokens"]
    assert (tracer.stats().enqueued, other.stats().enqueued) == (1, 0)
    await other.shutdown(timeout=5)


async def test_a_sampled_out_held_trace_is_refused(fake: FakeLLM, recorder: Recorder) -> None:
    """Sampled out, a trace with an unfinished stream is refused at once (False), as any
    sampled-out trace, and nothing of it is sent or counted."""
    tracer = AsyncTracing(endpoint=recorder.url, sample_rate=0.0, flush_interval=0)
    client = tracer.instrument(openai_client(fake, is_async=True))
    async with tracer.trace("request") as made:
        stream = await open_stream("openai", client)
        assert tracer.enqueue(made) is False
    _ = [chunk async for chunk in stream]
    stats = await tracer.shutdown(timeout=5)
    assert (stats.enqueued, stats.sent) == (0, 0)
    assert recorder.received == []
