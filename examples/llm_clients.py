"""Instrumented OpenAI and Anthropic clients: every API call becomes a span with its tokens.

    python examples/llm_clients.py [--endpoint http://127.0.0.1:8787]

Runs against the local fake API in ``_fake_llm.py`` (no network, no API key): a support
agent traced with ``@tracer.observe()`` asks OpenAI for a plan (a tool call), streams an
Anthropic answer, embeds it, and a sync client in a worker thread uses the Responses API
outside any trace (a trace of its own). ``make demo`` runs it after the agent workload.
The setup is the two lines in ``make_clients``; this file is also type-checked with
``mypy --strict``: the instrumented clients keep their own types.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Collection
from typing import Any, assert_type

import aiohttp
from _fake_llm import FakeLLM
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI, OpenAI

from tracing import AsyncTracing, Stats

__all__ = ["report", "run"]

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def make_clients(tracer: AsyncTracing, fake: FakeLLM) -> tuple[AsyncOpenAI, AsyncAnthropic, OpenAI]:
    openai = tracer.instrument(AsyncOpenAI(base_url=fake.openai_url, api_key="demo"))
    anthropic = tracer.instrument(AsyncAnthropic(base_url=fake.anthropic_url, api_key="demo"))
    sync_openai = tracer.instrument(OpenAI(base_url=fake.openai_url, api_key="demo"))
    assert_type(openai, AsyncOpenAI)
    assert_type(anthropic, AsyncAnthropic)
    return openai, anthropic, sync_openai


async def run(endpoint: str, questions: int = 3) -> tuple[Stats, list[dict[str, Any]]]:
    """Make the calls, deliver the traces; return the SDK's stats and what the API said."""
    async with AsyncTracing(endpoint=endpoint, flush_interval=0) as tracer:
        with FakeLLM.threaded() as fake:
            openai, anthropic, sync_openai = make_clients(tracer, fake)

            @tracer.observe("support_agent")
            async def support_agent(question: str) -> str:
                plan = await openai.chat.completions.create(
                    model="gpt-4o-mini-tools",
                    messages=[{"role": "user", "content": question}],
                    tools=[WEATHER_TOOL],
                )
                calls = plan.choices[0].message.tool_calls or []
                async with anthropic.messages.stream(
                    model="claude-haiku-4-5",
                    max_tokens=256,
                    system="You are a helpful support agent.",
                    messages=[{"role": "user", "content": f"{question} ({len(calls)} tools)"}],
                ) as stream:
                    message = await stream.get_final_message()
                answer = "".join(block.text for block in message.content if block.type == "text")
                await openai.embeddings.create(model="text-embedding-3-small", input=answer)
                return answer

            for number in range(questions):
                await support_agent(f"Will it rain in Paris on day {number}?")
            await asyncio.to_thread(
                sync_openai.responses.create, model="gpt-4.1-cached", input="Summarise the day."
            )
            await openai.close()
            await anthropic.close()
            sync_openai.close()
    return tracer.stats(), fake.served


async def report(
    url: str, stats: Stats, served: list[dict[str, Any]], known: Collection[str]
) -> bool:
    """Print the newest LLM traces the collector at ``url`` holds (not in ``known``), span
    by span; True when their tokens are exactly what the API answered."""
    print("LLM clients: instrumented AsyncOpenAI, AsyncAnthropic and OpenAI (fake API, no network)")
    tokens = 0
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/traces", params={"limit": 100}) as response:
            page = await response.json()
        for item in sorted(page["traces"], key=lambda t: t["startTime"]):
            if item["id"] in known:
                continue
            async with http.get(f"{url}/api/traces/{item['id']}") as response:
                trace = await response.json()
            print(f"  trace {trace['name']!r} ({trace['status']})")
            for span in trace["spans"]:
                usage = span["llmUsage"] or {}
                tokens += usage.get("promptTokens", 0) + usage.get("completionTokens", 0)
                ttft = span["metadata"].get("time_to_first_token")
                print(
                    f"    {span['name']:<32} {usage.get('provider', ''):<10} "
                    f"{usage.get('model', ''):<34} prompt {usage.get('promptTokens', 0):>4}  "
                    f"completion {usage.get('completionTokens', 0):>3}"
                    + (f"  ttft {ttft * 1000:.1f} ms" if ttft is not None else "")
                )
    said = sum(
        (entry["prompt_tokens"] or 0) + (entry["completion_tokens"] or 0) for entry in served
    )
    ok = tokens == said and stats.failed == stats.dropped == 0
    print(f"  tokens: {tokens:,} in the collector, {said:,} answered by the API")
    print("  check:    " + ("every LLM call arrived with its tokens" if ok else "MISMATCH"))
    print()
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", default=None)
    args = parser.parse_args()
    stats, served = asyncio.run(run(args.endpoint))
    print(f"{len(served)} API calls answered; traces sent: {stats.sent}, failed: {stats.failed}")


if __name__ == "__main__":
    main()
