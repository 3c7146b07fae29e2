"""Each call type, sync and async, streamed and not: one span with the usage, model,
output and metadata the fake server's answer implies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.llm._calls import OPERATION, SDK, call
from tests.llm.conftest import FakeLLM, anthropic_client, openai_client
from tracing import AsyncTracing, LlmUsage

SHAPES = [
    (kind, variant, stream)
    for kind in ("chat", "responses", "completions", "embeddings", "messages")
    for variant in ("text", "tools", "cached")
    for stream in (False, True)
    if not (kind == "embeddings" and (stream or variant != "text"))
    and not (kind == "completions" and variant != "text")
]


def client_for(kind: str, fake: FakeLLM, is_async: bool) -> Any:
    if SDK[kind] == "openai":
        return openai_client(fake, is_async=is_async)
    return anthropic_client(fake, is_async=is_async)


def check_output(kind: str, variant: str, output: Any, served: dict[str, Any]) -> None:
    if kind == "embeddings":
        assert output is None
    elif kind == "completions":
        assert output == served["reply"]
    elif variant == "tools":
        assert output["content"] is None
        [tool] = output["tool_calls"]
        assert tool["name"] == "get_weather"
        expected = {"location": "Paris"} if kind == "messages" else '{"city":"SF"}'
        assert tool["arguments"] == expected
        assert tool["id"]
    else:
        assert output == {"role": "assistant", "content": served["reply"]}


def check_details(kind: str, variant: str, meta: dict[str, Any], served: dict[str, Any]) -> None:
    usage = served["usage"]
    if kind == "messages":
        assert meta["gen_ai.usage.cache_read.input_tokens"] == usage["cache_read_input_tokens"]
        assert (
            meta["gen_ai.usage.cache_creation.input_tokens"] == usage["cache_creation_input_tokens"]
        )
        if variant == "cached":
            assert usage["cache_read_input_tokens"] > 0
    elif kind in ("chat", "responses"):
        cached = usage.get("prompt_tokens_details", usage.get("input_tokens_details"))
        reasoning = usage.get("completion_tokens_details", usage.get("output_tokens_details"))
        assert meta["gen_ai.usage.cache_read.input_tokens"] == cached["cached_tokens"]
        assert meta["gen_ai.usage.reasoning.output_tokens"] == reasoning["reasoning_tokens"]
        if variant == "cached":
            assert cached["cached_tokens"] > 0
            assert reasoning["reasoning_tokens"] > 0


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("kind", "variant", "stream"), SHAPES)
async def test_call_becomes_one_span(
    fake: FakeLLM, tracer: AsyncTracing, kind: str, variant: str, stream: bool, is_async: bool
) -> None:
    """The span: name, usage (cached input in prompt, Anthropic cache added), output, metadata."""
    client = tracer.instrument(client_for(kind, fake, is_async))
    model = f"model-{variant}"
    async with tracer.trace("request") as trace:
        await call(kind, client, model=model, text=f"hello {kind}", stream=stream)
    [span] = trace.spans
    [served] = fake.served
    assert span.name == f"{OPERATION[kind]} {model}"
    assert span.status == "ok", span.error
    assert span.parent_id is None
    assert span.llm_usage == LlmUsage(
        model=served["response_model"],
        provider="127.0.0.1",
        prompt_tokens=served["prompt_tokens"],
        completion_tokens=served["completion_tokens"],
        api_calls_count=1,
    )
    meta = span.metadata
    assert meta["gen_ai.request.model"] == model
    assert meta["gen_ai.response.model"] == served["response_model"]
    assert meta["stream"] is stream
    assert "usage_missing" not in meta
    assert "stream_incomplete" not in meta
    if kind != "embeddings":
        assert meta["gen_ai.response.id"]
        assert meta["gen_ai.response.finish_reasons"]
    assert ("time_to_first_token" in meta) is stream
    if stream:
        assert 0 < meta["time_to_first_token"] <= span.duration
    check_output(kind, variant, span.output, served)
    check_details(kind, variant, meta, served)
    assert span.input is not None
    assert f"hello {kind}" in str(span.input)


async def test_chat_stream_without_usage_says_so(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """No include_usage: no usage recorded (never estimated), usage_missing: true."""
    client = tracer.instrument(openai_client(fake))
    async with tracer.trace("request") as trace:
        await call("chat", client, model="gpt-nousage", text="hi", stream=False)
        chunks = await call("chat", client, model="gpt-nousage", text="hi", stream=True)
    assert chunks
    plain, streamed = trace.spans
    assert plain.llm_usage is not None
    assert "usage_missing" not in plain.metadata
    assert streamed.llm_usage is None
    assert streamed.metadata["usage_missing"] is True
    assert streamed.output == {"role": "assistant", "content": fake.served[1]["reply"]}


async def test_request_is_not_changed(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """A stream asked for without stream_options is sent exactly as asked."""
    client = tracer.instrument(openai_client(fake))
    messages = [{"role": "user", "content": "hi"}]
    async with tracer.trace("request"):
        stream = await asyncio.to_thread(
            client.chat.completions.create, model="gpt-x", messages=messages, stream=True
        )
        await asyncio.to_thread(list, stream)
    assert fake.requests == [{"model": "gpt-x", "messages": messages, "stream": True}]
