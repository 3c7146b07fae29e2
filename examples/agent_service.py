"""An async "agent service" workload: what `make demo` runs through ``AsyncTracing``.

Each request is one trace. The agent retrieves context (two searches in parallel tasks,
then a rerank), plans with an LLM, calls one to three tools, and answers with an LLM.
Spans nest automatically (contextvars follow ``asyncio.gather``); LLM spans carry token
usage; a tool sometimes fails and is retried, and sometimes the whole request fails.
Latencies are simulated with ``asyncio.sleep`` so thousands of requests run in seconds.

Run it on its own against a collector::

    python -m tracing.collector &
    python examples/agent_service.py --requests 500
"""

from __future__ import annotations

import argparse
import asyncio
import random
from dataclasses import dataclass, field

from tracing import AsyncTracing, LlmUsage, Stats, Trace

KINDS = ("answer_question", "summarize_document", "plan_trip", "triage_ticket")
TOOLS = ("web_search", "calculator", "calendar", "crm_lookup", "send_email")
MODELS = (("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku"), ("openai", "gpt-4o"))


class ToolError(RuntimeError):
    """A tool call failed (timeout, bad answer, upstream 500)."""


@dataclass
class Tally:
    """What the workload itself believes it produced, to compare with the collector."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    spans: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Agent:
    """A toy agent whose every step is a span of the current trace."""

    def __init__(self, rng: random.Random, latency: float) -> None:
        self.rng = rng
        self.latency = latency

    async def _work(self, scale: float = 1.0) -> None:
        await asyncio.sleep(self.rng.uniform(0.2, 1.0) * self.latency * scale)

    async def llm(self, trace: Trace, name: str, prompt: str) -> LlmUsage:
        provider, model = self.rng.choice(MODELS)
        with trace.span(name, input={"prompt": prompt[:80]}, metadata={"model": model}) as span:
            await self._work(3)
            usage = LlmUsage(
                model,
                provider,
                prompt_tokens=self.rng.randint(200, 1500),
                completion_tokens=self.rng.randint(20, 400),
            )
            span.end(output=f"({model} says) ...", llm_usage=usage)
        return usage

    async def search(self, trace: Trace, source: str, query: str) -> list[str]:
        with trace.span(f"search.{source}", input={"query": query}) as span:
            await self._work()
            hits = [f"{source}-doc-{self.rng.randint(1, 999)}" for _ in range(3)]
            span.end(output=hits)
        return hits

    async def retrieve(self, trace: Trace, query: str) -> list[str]:
        with trace.span("retrieve", input={"query": query}) as span:
            # Two searches in parallel tasks: each becomes a child of "retrieve".
            web, docs = await asyncio.gather(
                self.search(trace, "web", query), self.search(trace, "docs", query)
            )
            with trace.span("rerank", input={"candidates": len(web) + len(docs)}) as rerank:
                await self._work(0.5)
                best = sorted(web + docs)[:3]
                rerank.end(output=best)
            span.end(output=best)
        return best

    async def tool(self, trace: Trace, name: str, attempt: int = 1) -> str:
        with trace.span(f"tool.{name}", input={"attempt": attempt}) as span:
            await self._work(2)
            if self.rng.random() < 0.12:
                raise ToolError(f"{name} timed out after 30s (attempt {attempt})")
            span.end(output={"status": "done"})
        return "done"


async def handle(
    tracer: AsyncTracing, agent: Agent, tally: Tally, request_id: int, rng: random.Random
) -> None:
    """One request to the service: one trace with nested spans."""
    kind = rng.choice(KINDS)
    question = f"request {request_id}: {kind.replace('_', ' ')} for customer {rng.randint(1, 99)}"
    usages: list[LlmUsage] = []
    tally.requests += 1
    tally.by_kind[kind] = tally.by_kind.get(kind, 0) + 1
    trace = tracer.trace(
        kind,
        input={"question": question},
        input_summary=question[:60],
        metadata={"request_id": request_id, "tier": rng.choice(["free", "pro", "enterprise"])},
        tags=[kind, "demo"],
    )
    try:
        async with trace:
            await agent.retrieve(trace, question)
            usages.append(await agent.llm(trace, "llm.plan", f"Plan: {question}"))
            for name in rng.sample(TOOLS, rng.randint(1, 3)):
                try:
                    await agent.tool(trace, name)
                except ToolError:
                    await agent.tool(trace, name, attempt=2)  # one retry; may fail again
            usages.append(await agent.llm(trace, "llm.answer", f"Answer: {question}"))
            trace.output = f"Answer to request {request_id}"
            trace.output_summary = "answered"
            trace.llm_usage = LlmUsage(
                "mixed" if len({u.model for u in usages}) > 1 else usages[0].model,
                "mixed" if len({u.provider for u in usages}) > 1 else usages[0].provider,
                prompt_tokens=sum(u.prompt_tokens for u in usages),
                completion_tokens=sum(u.completion_tokens for u in usages),
                api_calls_count=len(usages),
            )
    except ToolError:
        tally.errors += 1  # the trace recorded the error and its message on exit
    tally.spans += len(trace.spans)
    if trace.llm_usage is not None:
        tally.prompt_tokens += trace.llm_usage.prompt_tokens
        tally.completion_tokens += trace.llm_usage.completion_tokens
        tally.llm_calls += trace.llm_usage.api_calls_count
    elif usages:
        # A failed request still spent tokens on its earlier LLM calls (span usage).
        tally.prompt_tokens += sum(u.prompt_tokens for u in usages)
        tally.completion_tokens += sum(u.completion_tokens for u in usages)
        tally.llm_calls += len(usages)


async def run(
    endpoint: str | None,
    *,
    requests: int = 3000,
    concurrency: int = 200,
    latency: float = 0.01,
    seed: int = 7,
    publishable_key: str | None = None,
) -> tuple[Stats, Tally]:
    """Serve ``requests`` agent requests, ``concurrency`` at a time, each as a trace;
    shut the SDK down cleanly and return its final stats and the workload's own tally."""
    rng = random.Random(seed)
    agent = Agent(rng, latency)
    tally = Tally()
    limit = asyncio.Semaphore(concurrency)
    tracer = AsyncTracing(
        endpoint=endpoint,
        publishable_key=publishable_key,
        flush_at=100,
        flush_interval=1.0,
        compression="gzip",
    )

    async def one(request_id: int) -> None:
        async with limit:
            await handle(tracer, agent, tally, request_id, rng)

    async with tracer, asyncio.TaskGroup() as tasks:
        for request_id in range(requests):
            tasks.create_task(one(request_id), name=f"request-{request_id}")
    # Leaving ``async with tracer`` ran shutdown(): everything is delivered or counted.
    return tracer.stats(), tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoint", default=None, help="collector URL (default: the SDK's)")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    stats, tally = asyncio.run(
        run(args.endpoint, requests=args.requests, concurrency=args.concurrency)
    )
    print(stats)
    print(tally)


if __name__ == "__main__":
    main()
