"""The token figures of instrumented LLM calls that reach the real collector are the
ones the (fake) API answered, for every call shape, sync and async, streamed and not."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.collector.conftest import Collector, get_json
from tests.llm._calls import OPERATION, SDK, call
from tests.llm.conftest import FakeLLM, anthropic_client, openai_client
from tests.llm.test_calls import SHAPES
from tracing import AsyncTracing


async def make_every_call(tracer: AsyncTracing, fake: FakeLLM) -> list[tuple[str, str, bool]]:
    made: list[tuple[str, str, bool]] = []
    for is_async in (False, True):
        clients: dict[str, Any] = {
            "openai": tracer.instrument(openai_client(fake, is_async=is_async)),
            "anthropic": tracer.instrument(anthropic_client(fake, is_async=is_async)),
        }
        for kind, variant, stream in SHAPES:
            model = f"{kind}-{variant}-{'a' if is_async else 's'}-{int(stream)}"
            await call(kind, clients[SDK[kind]], model=model, text="hi", stream=stream)
            made.append((kind, model, stream))
        for client in clients.values():
            closing = client.close()
            if closing is not None:
                await closing
    return made


async def test_collector_holds_the_servers_token_figures(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """One trace per shape; the collector's span usage equals what the server sent."""
    tracer = AsyncTracing(endpoint=collector.url, flush_interval=0)
    with FakeLLM.threaded() as fake:
        async with tracer:
            made = await make_every_call(tracer, fake)
    assert tracer.stats().sent == len(made) == len(fake.served)
    status, page = await get_json(http, f"{collector.url}/api/traces?limit=1000")
    assert status == 200
    assert page["total"] == len(made)
    by_name = {item["name"]: item for item in page["traces"]}
    for (kind, model, stream), served in zip(made, fake.served, strict=True):
        summary = by_name[f"{OPERATION[kind]} {model}"]
        assert summary["totalTokens"] == served["prompt_tokens"] + served["completion_tokens"]
        status, trace = await get_json(http, f"{collector.url}/api/traces/{summary['id']}")
        assert status == 200
        [span] = trace["spans"]
        assert span["llmUsage"] == {
            "model": served["response_model"],
            "provider": "127.0.0.1",
            "promptTokens": served["prompt_tokens"],
            "completionTokens": served["completion_tokens"],
            "apiCallsCount": 1,
        }
        assert span["metadata"]["stream"] is stream
