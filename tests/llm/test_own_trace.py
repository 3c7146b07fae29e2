"""A call outside any trace is a trace of its own that ends with its one span, and the
span's usage is a real ``LlmUsage`` (it is built without attrs' ``__init__``)."""

from __future__ import annotations

import logging
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
