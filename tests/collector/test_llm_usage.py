"""The token figures of instrumented LLM calls that reach the real collector are the
ones the (fake) API answered, for every call shape, sync and async, streamed and not."""

from __future__ import annotations

import aiohttp

from tests.collector.conftest import Collector, get_json
from tests.llm._calls import OPERATION, SDK, call
from tests.llm.conftest import (  # the fake server and client-closing fixtures too
    FakeLLM,
    anthropic_client,
    close_clients,  # noqa: F401
    fake,  # noqa: F401
    openai_client,
)
from tests.llm.test_calls import SHAPES
from tracing import AsyncTracing


async def test_collector_holds_the_servers_token_figures(
    collector: Collector, http: aiohttp.ClientSession, fake: FakeLLM
) -> None:
    """One trace per shape; the collector's span usage equals what the server sent."""
    tracer = AsyncTracing(endpoint=collector.url, flush_interval=0)
    made: list[tuple[str, str, bool, bool]] = []
    async with tracer:
        for is_async in (False, True):
            clients = {
                "openai": tracer.instrument(openai_client(fake, is_async=is_async)),
                "anthropic": tracer.instrument(anthropic_client(fake, is_async=is_async)),
            }
            for kind, variant, stream in SHAPES:
                model = f"{kind}-{variant}-{'a' if is_async else 's'}-{int(stream)}"
                await call(kind, clients[SDK[kind]], model=model, text="hi", stream=stream)
                made.append((kind, model, stream, is_async))
    assert tracer.stats().sent == len(made) == len(fake.served)
    status, page = await get_json(http, f"{collector.url}/api/traces?limit=1000")
    assert status == 200 and page["total"] == len(made)
    by_name = {item["name"]: item for item in page["traces"]}
    for (kind, model, stream, _), served in zip(made, fake.served, strict=True):
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
