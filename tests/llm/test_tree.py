"""Where LLM spans go: under the current span of the current trace (``@observe``, the
FastAPI middleware, nested spans), or a trace of their own; 200 concurrent calls keep
their own figures."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from tests.integrations.conftest import Recorder, delivered
from tests.llm._calls import call
from tests.llm.conftest import FakeLLM, anthropic_client, openai_client
from tracing import AsyncTracing, current_trace
from tracing.integrations.fastapi import TracingMiddleware


async def test_under_observe_and_nested_span(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """Inside ``@observe`` and a ``with trace.span()`` the LLM span is the inner one's child."""
    client = tracer.instrument(openai_client(fake, is_async=True))

    @tracer.observe()
    async def agent(question: str) -> str:
        trace = current_trace()
        assert trace is not None
        with trace.span("plan"):
            result = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": question}]
            )
        return str(result.choices[0].message.content)

    answer = await agent("why?")
    [trace] = await delivered(tracer, recorder)
    assert trace["output"] == answer
    plan, llm = trace["spans"]
    assert plan["name"] == "plan"
    assert plan["parentId"] is None
    assert llm["name"] == "chat gpt-4o"
    assert llm["parentId"] == plan["id"]
    assert llm["llmUsage"]["promptTokens"] == fake.served[0]["prompt_tokens"]


async def test_outside_any_trace_is_a_trace_of_its_own(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """No current trace: one trace with that one span, named like it, queued at the end."""
    client = tracer.instrument(anthropic_client(fake))
    await call("messages", client, model="claude-a", text="hi", stream=False)
    stream = await asyncio.to_thread(
        client.messages.create,
        model="claude-b",
        max_tokens=9,
        messages=[{"role": "user", "content": "yo"}],
        stream=True,
    )
    assert tracer.stats().enqueued == 1  # the stream's trace waits for the stream
    await asyncio.to_thread(list, stream)
    first, second = await delivered(tracer, recorder)
    for trace, model, served in ((first, "claude-a", 0), (second, "claude-b", 1)):
        assert trace["name"] == f"chat {model}"
        [span] = trace["spans"]
        assert span["name"] == trace["name"]
        assert span["parentId"] is None
        assert span["llmUsage"]["promptTokens"] == fake.served[served]["prompt_tokens"]
        assert trace["llmUsage"] is None  # the tokens are counted once, on the span
        assert trace["status"] == "ok"


async def test_under_fastapi_middleware(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """A handler's LLM call is a span of the request's trace."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    app = FastAPI()
    app.add_middleware(TracingMiddleware, tracer=tracer)

    @app.get("/ask/{topic}")
    async def ask(topic: str) -> dict[str, Any]:
        result = await client.responses.create(model="gpt-4.1", input=topic)
        return {"answer": result.output_text}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/ask/cats")
    assert response.json() == {"answer": fake.served[0]["reply"]}
    [trace] = await delivered(tracer, recorder)
    assert trace["name"] == "GET /ask/{topic}"
    [span] = trace["spans"]
    assert span["name"] == "chat gpt-4.1"
    assert span["llmUsage"]["completionTokens"] == fake.served[0]["completion_tokens"]


async def test_200_concurrent_calls_no_cross_talk(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """200 concurrent calls (streamed and not, both SDKs), each in its own trace: every
    span holds its own request's input, output and token figures."""
    oai = tracer.instrument(openai_client(fake, is_async=True))
    ant = tracer.instrument(anthropic_client(fake, is_async=True))

    async def one(i: int) -> None:
        kind, client = ("chat", oai) if i % 2 else ("messages", ant)
        async with tracer.trace(f"job {i}"):
            await call(
                kind, client, model=f"m-chunks{i % 7 + 1}", text=f"job {i}", stream=i % 3 == 0
            )

    await asyncio.gather(*(one(i) for i in range(200)))
    traces = await delivered(tracer, recorder)
    assert len(traces) == 200
    served = {entry["text"]: entry for entry in fake.served}
    for trace in traces:
        [span] = trace["spans"]
        text = trace["name"]
        entry = served[text]
        assert text in str(span["input"])
        assert span["output"]["content"] == entry["reply"]
        assert span["llmUsage"]["promptTokens"] == entry["prompt_tokens"]
        assert span["llmUsage"]["completionTokens"] == entry["completion_tokens"]
        assert span["name"] == f"chat {entry['model']}"
