"""The SDKs' helper streams (``chat.completions.stream()``, ``responses.stream()``,
Anthropic's ``messages.stream()`` and ``get_final_message()``) and their context
managers keep working, and their calls are recorded like any other."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.llm.conftest import FakeLLM, anthropic_client, openai_client
from tracing import AsyncTracing

MESSAGES: list[Any] = [{"role": "user", "content": "weather in Paris?"}]


def chat_helpers(client: Any) -> Any:
    """``chat.completions`` (openai >= 1.92) or ``beta.chat.completions`` (before)."""
    completions = client.chat.completions
    return completions if hasattr(completions, "stream") else client.beta.chat.completions


def check(span: Any, served: dict[str, Any], text: bool = True) -> None:
    assert span.status == "ok", span.error
    assert span.end_time is not None
    assert "stream_incomplete" not in span.metadata
    assert span.llm_usage.prompt_tokens == served["prompt_tokens"]
    assert span.llm_usage.completion_tokens == served["completion_tokens"]
    if text:
        assert span.output["content"] == served["reply"]


async def test_anthropic_messages_stream_sync(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """``with messages.stream() as s: s.get_final_message()`` works and is recorded."""
    client = tracer.instrument(anthropic_client(fake))

    def run() -> Any:
        with client.messages.stream(
            model="claude-tools", max_tokens=64, messages=MESSAGES
        ) as stream:
            return stream.get_final_message()

    async with tracer.trace("request") as trace:
        final = await asyncio.to_thread(run)
    assert final.content[0].input == {"location": "Paris"}
    [span] = trace.spans
    check(span, fake.served[0], text=False)
    assert span.output["tool_calls"][0]["arguments"] == {"location": "Paris"}
    assert span.metadata["stream"] is True


async def test_anthropic_messages_stream_async_text(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """``async with messages.stream()`` and its ``text_stream``."""
    client = tracer.instrument(anthropic_client(fake, is_async=True))
    async with (
        tracer.trace("request") as trace,
        client.messages.stream(model="claude-sonnet", max_tokens=64, messages=MESSAGES) as stream,
    ):
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == final.content[0].text == fake.served[0]["reply"]
    [span] = trace.spans
    check(span, fake.served[0])
    assert span.llm_usage is not None
    assert span.llm_usage.prompt_tokens == final.usage.input_tokens


async def test_anthropic_stream_left_early(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """Leaving the helper's ``async with`` before the end closes the span there."""
    client = tracer.instrument(anthropic_client(fake, is_async=True))
    async with tracer.trace("request") as trace:
        async with client.messages.stream(
            model="claude-chunks9", max_tokens=64, messages=MESSAGES
        ) as stream:
            async for _event in stream:
                break
        [span] = trace.spans
        assert span.end_time is not None
        assert span.metadata["stream_incomplete"] == "closed"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_chat_completions_stream_helper(
    fake: FakeLLM, tracer: AsyncTracing, is_async: bool
) -> None:
    """``chat.completions.stream()`` and ``get_final_completion()``."""
    client = tracer.instrument(openai_client(fake, is_async=is_async))
    options: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": MESSAGES,
        "stream_options": {"include_usage": True},
    }
    async with tracer.trace("request") as trace:
        if is_async:
            async with chat_helpers(client).stream(**options) as stream:
                final = await stream.get_final_completion()
        else:

            def run() -> Any:
                with chat_helpers(client).stream(**options) as stream:
                    return stream.get_final_completion()

            final = await asyncio.to_thread(run)
    assert final.choices[0].message.content == fake.served[0]["reply"]
    [span] = trace.spans
    check(span, fake.served[0])


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_responses_stream_helper(fake: FakeLLM, tracer: AsyncTracing, is_async: bool) -> None:
    """``responses.stream()`` and ``get_final_response()``."""
    client = tracer.instrument(openai_client(fake, is_async=is_async))
    async with tracer.trace("request") as trace:
        if is_async:
            async with client.responses.stream(model="gpt-4.1", input="hi") as stream:
                final = await stream.get_final_response()
        else:

            def run() -> Any:
                with client.responses.stream(model="gpt-4.1", input="hi") as stream:
                    return stream.get_final_response()

            final = await asyncio.to_thread(run)
    assert final.output_text == fake.served[0]["reply"]
    [span] = trace.spans
    check(span, fake.served[0])


async def test_chat_parse(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """``chat.completions.parse()`` (structured outputs) goes through the same point."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    async with tracer.trace("request") as trace:
        parsed = await chat_helpers(client).parse(model="gpt-4o", messages=MESSAGES)
    assert parsed.choices[0].message.content == fake.served[0]["reply"]
    [span] = trace.spans
    check(span, fake.served[0])
