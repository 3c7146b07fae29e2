"""A call outside any trace is a trace of its own that ends with its one span, and the
span's usage is a real ``LlmUsage`` (it is built without attrs' ``__init__``)."""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import attrs
import openai
import pytest

from tests.integrations.conftest import Recorder, delivered
from tests.llm._calls import call
from tests.llm.conftest import FakeLLM, anthropic_client, openai_client
from tracing import AsyncTracing, LlmUsage


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", ["chat", "messages"])
async def test_own_trace_ends_with_its_span(
    fake: FakeLLM,
    tracer: AsyncTracing,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    stream: bool,
    is_async: bool,
) -> None:
    """The trace's end is its span's end; it is ended, not reported as never ended."""
    make = openai_client if kind == "chat" else anthropic_client
    client = tracer.instrument(make(fake, is_async=is_async))
    with caplog.at_level(logging.WARNING, logger="tracing"):
        await call(kind, client, model="m-own", text="alone", stream=stream)
        [trace] = await delivered(tracer, recorder)
    [span] = trace["spans"]
    assert trace["endTime"] is not None
    assert trace["endTime"] == span["endTime"]
    assert trace["startTime"] <= span["startTime"] <= span["endTime"]
    assert trace["status"] == span["status"] == "ok"
    assert span["llmUsage"]["promptTokens"] == fake.served[0]["prompt_tokens"]
    assert "never ended" not in caplog.text


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", ["chat", "messages"])
async def test_own_trace_of_a_failed_call_is_an_error(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder, kind: str, is_async: bool
) -> None:
    """A 400 outside any trace: the trace says error, with the span's error text."""
    make = openai_client if kind == "chat" else anthropic_client
    client = tracer.instrument(make(fake, is_async=is_async))
    error: Any = openai.BadRequestError if kind == "chat" else anthropic.BadRequestError
    with pytest.raises(error) as raised:
        await call(kind, client, model="m-fail", text="x", stream=False)
    [trace] = await delivered(tracer, recorder)
    [span] = trace["spans"]
    assert span["status"] == trace["status"] == "error"
    assert span["error"] == trace["error"] == f"BadRequestError: {raised.value}"
    assert trace["endTime"] == span["endTime"]
    assert span["llmUsage"] is None


@pytest.mark.parametrize("kind", ["chat", "messages"])
async def test_usage_is_a_real_llm_usage(fake: FakeLLM, tracer: AsyncTracing, kind: str) -> None:
    """Equal to, hashed like, frozen like and evolvable like ``LlmUsage(...)``."""
    make = openai_client if kind == "chat" else anthropic_client
    client = tracer.instrument(make(fake))
    async with tracer.trace("request") as trace:
        await call(kind, client, model="m-usage", text="count", stream=False)
    usage = trace.spans[0].llm_usage
    assert type(usage) is LlmUsage
    [served] = fake.served
    expected = LlmUsage(
        model=served["response_model"],
        provider="127.0.0.1",
        prompt_tokens=served["prompt_tokens"],
        completion_tokens=served["completion_tokens"],
        api_calls_count=1,
    )
    assert usage == expected
    assert hash(usage) == hash(expected)
    assert repr(usage) == repr(expected)
    assert usage.total_tokens == served["prompt_tokens"] + served["completion_tokens"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        usage.prompt_tokens = 1  # type: ignore[misc]
    assert attrs.evolve(usage, prompt_tokens=1).prompt_tokens == 1
    with pytest.raises(ValueError, match="prompt_tokens"):
        attrs.evolve(usage, prompt_tokens=-1)


_HEX32 = re.compile(r"[0-9a-f]{32}")


def _queued(tracer: AsyncTracing) -> list[Any]:
    """The traces queued and not yet taken by the flusher (a sync call in the test's
    loop thread: the flusher cannot run before the test awaits)."""
    return list(tracer._queue._items)


@pytest.mark.parametrize("kind", ["chat", "messages"])
async def test_own_trace_ids_read_early_are_those_sent(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder, kind: str
) -> None:
    """The ids (drawn when first read) are 32 lowercase hex digits, the same at every
    read, the span's trace id is the trace's, and the collector gets exactly them."""
    make = openai_client if kind == "chat" else anthropic_client
    client = tracer.instrument(make(fake))
    for text in ("one", "two"):
        _create = client.chat.completions.create if kind == "chat" else client.messages.create
        extra: dict[str, Any] = {} if kind == "chat" else {"max_tokens": 16}
        _create(model="m-ids", messages=[{"role": "user", "content": text}], **extra)
    first, second = _queued(tracer)
    ids = [first.id, first.spans[0].id, second.id, second.spans[0].id]
    assert all(_HEX32.fullmatch(value) for value in ids)
    assert len(set(ids)) == 4
    assert [first.id, first.spans[0].id, second.id, second.spans[0].id] == ids
    assert first.spans[0]._trace_id == first.id
    sent = await delivered(tracer, recorder)
    assert [value for trace in sent for value in (trace["id"], trace["spans"][0]["id"])] == ids


@pytest.mark.parametrize("kind", ["chat", "messages"])
async def test_own_trace_ids_never_read_before_sending(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder, kind: str
) -> None:
    """Ids first read by the encoder: 32 hex digits, distinct, and the Trace read after
    the send shows the ids that were sent."""
    make = openai_client if kind == "chat" else anthropic_client
    client = tracer.instrument(make(fake))
    for _ in range(3):
        await call(kind, client, model="m-late-ids", text="x", stream=False)
    traces = _queued(tracer)
    sent = await delivered(tracer, recorder)
    wire = [(trace["id"], trace["spans"][0]["id"]) for trace in sent]
    assert all(_HEX32.fullmatch(value) for pair in wire for value in pair)
    assert len({value for pair in wire for value in pair}) == 6
    assert [(trace.id, trace.spans[0].id) for trace in traces] == wire
    assert [trace.spans[0]._trace_id for trace in traces] == [pair[0] for pair in wire]


async def test_ids_read_from_threads_at_once_agree(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """Threads reading the same fresh records' ids at once all see one id per record."""
    client = tracer.instrument(openai_client(fake))
    for _ in range(20):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    traces = _queued(tracer)
    records = [record for trace in traces for record in (trace, trace.spans[0])]
    start = threading.Barrier(4)

    def read() -> list[str]:
        start.wait()
        return [record.id for record in records]

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(lambda _: read(), range(4)))
    assert seen[0] == seen[1] == seen[2] == seen[3]
    assert len(set(seen[0])) == 40


@pytest.mark.parametrize("kind", ["chat", "messages"])
async def test_span_id_inside_a_trace_is_drawn_once(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder, kind: str
) -> None:
    """An LLM span inside a trace: its id is 32 hex digits, stable, not its sibling's,
    and the one sent; its trace id is the trace's."""
    make = openai_client if kind == "chat" else anthropic_client
    client = tracer.instrument(make(fake, is_async=True))
    async with tracer.trace("request") as trace:
        await call(kind, client, model="m-a", text="a", stream=False)
        await call(kind, client, model="m-b", text="b", stream=False)
        first, second = trace.spans
        ids = [first.id, second.id]
        assert all(_HEX32.fullmatch(value) for value in ids)
        assert [first.id, second.id] == ids
        assert ids[0] != ids[1]
        assert first._trace_id == second._trace_id == trace.id
    [sent] = await delivered(tracer, recorder)
    assert [span["id"] for span in sent["spans"]] == ids
