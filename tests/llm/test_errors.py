"""API errors are recorded and re-raised unchanged; the clients' own retries stay inside
one span; ``with_raw_response`` and ``with_streaming_response`` keep working."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import anthropic
import openai
import pytest

from tests.llm._calls import call
from tests.llm.conftest import FakeLLM, anthropic_client, openai_client
from tracing import AsyncTracing

MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", ["chat", "messages"])
async def test_api_error_recorded_and_reraised(
    fake: FakeLLM, tracer: AsyncTracing, kind: str, is_async: bool
) -> None:
    """A 400: the caller gets the SDK's own BadRequestError; the span says which."""
    make = openai_client if kind == "chat" else anthropic_client
    plain = make(fake, is_async=is_async)
    client = tracer.instrument(make(fake, is_async=is_async))
    error: Any = openai.BadRequestError if kind == "chat" else anthropic.BadRequestError
    with pytest.raises(error) as expected:
        await call(kind, plain, model="m-fail", text="x", stream=False)
    async with tracer.trace("request") as trace:
        with pytest.raises(error) as raised:
            await call(kind, client, model="m-fail", text="x", stream=False)
    assert str(raised.value) == str(expected.value)
    assert raised.value.status_code == 400
    assert raised.value.body == expected.value.body
    [span] = trace.spans
    assert span.status == "error"
    assert span.error == f"BadRequestError: {raised.value}"
    assert span.metadata["error.type"] == "BadRequestError"
    assert span.llm_usage is None
    assert span.output is None
    assert trace.status == "ok"  # the caller caught it


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", ["chat", "messages"])
async def test_retries_stay_inside_one_span(
    fake: FakeLLM, tracer: AsyncTracing, kind: str, is_async: bool
) -> None:
    """429 (retry-after) and 500, retried by the client itself: one ok span."""
    make = openai_client if kind == "chat" else anthropic_client
    client = tracer.instrument(make(fake, is_async=is_async))
    async with tracer.trace("request") as trace:
        await call(kind, client, model="m-flaky", text="x", stream=True)
    assert len(fake.requests) == 3
    [span] = trace.spans
    assert span.status == "ok"
    assert span.llm_usage is not None
    assert span.llm_usage.prompt_tokens == fake.served[0]["prompt_tokens"]


async def test_retries_exhausted_and_connection_error(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """No retries left: RateLimitError; nothing listening: APIConnectionError; both recorded."""
    client = tracer.instrument(openai_client(fake, is_async=True, max_retries=0))
    dead = tracer.instrument(
        openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0)
    )
    async with tracer.trace("request") as trace:
        with pytest.raises(openai.RateLimitError):
            await call("chat", client, model="m-flaky", text="x", stream=False)
        with pytest.raises(openai.APIConnectionError):
            await call("chat", dead, model="m", text="x", stream=False)
    await dead.close()
    limited, unreachable = trace.spans
    assert limited.error is not None
    assert limited.error.startswith("RateLimitError: ")
    assert unreachable.metadata["error.type"] == "APIConnectionError"
    assert unreachable.metadata["gen_ai.provider.name"] == "127.0.0.1"


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_openai_with_raw_response(
    fake: FakeLLM, tracer: AsyncTracing, is_async: bool, stream: bool
) -> None:
    """``with_raw_response``: the caller gets the raw response; parse() still works."""
    client = tracer.instrument(openai_client(fake, is_async=is_async))
    create = client.chat.completions.with_raw_response.create
    options: dict[str, Any] = {"model": "gpt-raw", "messages": MESSAGES, "stream": stream}
    if stream:
        options["stream_options"] = {"include_usage": True}
    async with tracer.trace("request") as trace:
        if is_async:
            raw = await create(**options)
        else:
            raw = await asyncio.to_thread(lambda: create(**options))
        assert raw.headers["content-type"].startswith(
            "text/event-stream" if stream else "application/json"
        )
        parsed = raw.parse()
        if stream and is_async:
            text = "".join([c.choices[0].delta.content or "" async for c in parsed if c.choices])
        elif stream:
            text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
        else:
            text = parsed.choices[0].message.content
    assert text == fake.served[0]["reply"]
    [span] = trace.spans
    assert span.output == {"role": "assistant", "content": text}
    assert span.llm_usage is not None
    assert span.llm_usage.prompt_tokens == fake.served[0]["prompt_tokens"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_anthropic_with_raw_response(
    fake: FakeLLM, tracer: AsyncTracing, is_async: bool
) -> None:
    """Anthropic's ``with_raw_response``, whose async parse() is a coroutine."""
    client = tracer.instrument(anthropic_client(fake, is_async=is_async))
    create = client.messages.with_raw_response.create
    options: dict[str, Any] = {"model": "claude-raw", "max_tokens": 9, "messages": MESSAGES}
    async with tracer.trace("request") as trace:
        if is_async:
            raw = await create(**options)
            message = raw.parse()  # a coroutine from anthropic 0.50 on
            if inspect.isawaitable(message):
                message = await message
        else:
            raw = await asyncio.to_thread(lambda: create(**options))
            message = raw.parse()
    assert message.content[0].text == fake.served[0]["reply"]
    [span] = trace.spans
    assert span.output == {"role": "assistant", "content": message.content[0].text}
    assert span.llm_usage is not None


async def test_with_streaming_response_is_left_unread(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """``with_streaming_response``: the body stays the caller's to read; the span says so."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    streaming = client.chat.completions.with_streaming_response
    async with (
        tracer.trace("request") as trace,
        streaming.create(model="gpt-4o", messages=MESSAGES) as response,
    ):
        parsed = await response.parse()
    assert parsed.choices[0].message.content == fake.served[0]["reply"]
    [span] = trace.spans
    assert span.status == "ok"
    assert span.metadata["response_body_unread"] is True
    assert span.metadata["usage_missing"] is True
