"""Pairs of calls for ``llm_overhead.py``: the statistics of their differences, and the
async clients' comparison (``AsyncOpenAI``/``AsyncAnthropic`` streams, each read with
``async for`` on an event loop of its own, as in a service)."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import httpx2
import openai

from benchmarks._llm_report import Timing
from tracing import AsyncTracing

__all__ = ["MESSAGES", "clients", "compare_async", "drain", "mean_interval", "median_interval"]

MESSAGES: Any = [{"role": "user", "content": "Summarise the incident report in two lines."}]


def median_interval(values: list[float]) -> tuple[float, float, float]:
    """The median and a distribution-free 95 % confidence interval of it."""
    ordered = sorted(values)
    n = len(ordered)
    half = 0.98 * math.sqrt(n)  # 1.96 * sqrt(n) / 2 ranks either side of the middle
    low = ordered[max(int(n / 2 - half), 0)]
    high = ordered[min(math.ceil(n / 2 + half), n - 1)]
    return statistics.median(ordered), low, high


def mean_interval(values: list[float]) -> tuple[float, float]:
    """The mean and the half-width of its 95 % interval (normal approximation)."""
    return statistics.fmean(values), 1.96 * statistics.stdev(values) / math.sqrt(len(values))


def clients(sdk: str, base_url: str, transport: Any, is_async: bool = False) -> Any:
    """A client of ``sdk`` at ``base_url`` (no retries), its HTTP through ``transport``
    (None: a real connection)."""
    if is_async:
        ahttp = httpx2.AsyncClient(transport=transport) if transport is not None else None
        if sdk == "openai":
            return openai.AsyncOpenAI(
                base_url=base_url, api_key="k", max_retries=0, http_client=ahttp
            )
        return anthropic.AsyncAnthropic(
            base_url=base_url, api_key="k", max_retries=0, http_client=ahttp
        )
    http = httpx2.Client(transport=transport) if transport is not None else None
    if sdk == "openai":
        return openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, http_client=http)
    return anthropic.Anthropic(base_url=base_url, api_key="k", max_retries=0, http_client=http)


def drain(tracer: AsyncTracing) -> None:
    """What the flusher would have taken and sent, so memory stays flat."""
    tracer._queue.settle(sent=len(tracer._queue.take(10**9)))


def _streamed(client: Any, sdk: str, model: str) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        if sdk == "openai":
            stream = await client.chat.completions.create(
                model=model,
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        else:
            stream = await client.messages.create(
                model=model, max_tokens=512, messages=MESSAGES, stream=True
            )
        async for _ in stream:
            pass

    return call


def compare_async(
    answer: Callable[[Any], Any], case: tuple[str, str, bool], seconds: float
) -> Timing:
    """``compare`` for async clients and a streamed ``case``: pairs of streams (one
    uninstrumented, one instrumented, the order alternating) through an
    ``httpx2.MockTransport`` that gives ``answer``, each timed by the CPU clock, outside
    any trace, on one event loop; a tracer of its own, drained as the pairs go."""
    sdk, model, _ = case

    async def pairs() -> Timing:
        tracer = AsyncTracing(
            endpoint="http://127.0.0.1:9", max_queue_size=10**6, flush_at=10**6, flush_interval=0
        )
        base_url = "http://fake.invalid/v1" if sdk == "openai" else "http://fake.invalid"
        plain = clients(sdk, base_url, httpx2.MockTransport(answer), is_async=True)
        traced = tracer.instrument(
            clients(sdk, base_url, httpx2.MockTransport(answer), is_async=True)
        )
        arms = [_streamed(plain, sdk, model), _streamed(traced, sdk, model)]

        for _ in range(10):  # warm up
            await arms[0]()
            await arms[1]()
        drain(tracer)
        clock = time.process_time
        began = clock()
        await arms[0]()
        count = min(max(int(seconds / 2 / max(clock() - began, 1e-6)), 100), 5000)
        base: list[float] = []
        added: list[float] = []
        spent = [0.0, 0.0]
        for pair in range(count):
            for arm in (0, 1) if pair % 2 == 0 else (1, 0):
                began = clock()
                await arms[arm]()
                spent[arm] = clock() - began
            base.append(spent[0])
            added.append(spent[1] - spent[0])
            if pair % 50 == 49:
                drain(tracer)
        drain(tracer)
        await plain.close()
        await traced.close()
        await tracer.shutdown(timeout=0)
        median, low, high = median_interval(added)
        mean, half = mean_interval(added)
        return statistics.median(base), median, low, high, count, mean, half

    return asyncio.run(pairs())
