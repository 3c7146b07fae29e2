"""This SDK with ``protocol="otlp"`` -> the real collector -> ``GET /api/traces/{id}``:
what comes back is what was sent, for hand-made traces and, as a property, for random
ones (modulo the documented mapping: metadata values that are not strings, numbers or
booleans travel as JSON text)."""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.request
from typing import Any
from urllib.parse import quote

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.conftest import Collector, get_json
from tests.collector.otlp_strategies import SCALARS, sdk_traces
from tests.collector.test_otlp_map import expected, full_trace
from tracing import AsyncTracing, LlmUsage, Trace

FAST: dict[str, Any] = {
    "protocol": "otlp",
    "flush_interval": 0,
    "retry_backoff": 0.01,
    "retry_backoff_max": 0.1,
    "timeout": 30.0,
}


def scalar_metadata(trace: Trace) -> Trace:
    """``full_trace`` without its one dict-valued metadata entry."""
    trace.metadata.pop("nested", None)
    return trace


async def test_sdk_traces_read_back_as_sent(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """send_batch over OTLP (plain and gzip): each trace reads back equal to the original."""
    traces = [scalar_metadata(full_trace()) for _ in range(3)]
    traces.append(scalar_metadata(full_trace("0af7651916cd43dd8448eb211c80319c")))
    traces.append(scalar_metadata(full_trace("0AF7651916CD43DD8448EB211C80319D")))
    zipped = [scalar_metadata(full_trace()) for _ in range(2)]
    for compression, batch in ((None, traces), ("gzip", zipped)):
        async with AsyncTracing(endpoint=collector.url, compression=compression, **FAST) as tracer:
            result = await tracer.send_batch(batch)
        assert result.successful == len(batch), result.errors
    for trace in traces + zipped:
        status, document = await get_json(http, f"{collector.url}/api/traces/{trace.id}")
        assert status == 200, document
        assert document == expected(trace)


async def test_traces_made_by_the_tracer_read_back(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Traces built by ``tracer.trace()`` and nested spans, delivered by the flusher."""
    ids: list[str] = []
    async with AsyncTracing(endpoint=collector.url, flush_at=5, **FAST) as tracer:
        for i in range(12):
            async with tracer.trace(f"agent.{i % 3}", input={"i": i}, tags=["t"]) as trace:
                ids.append(trace.id)
                with trace.span("plan", input="think") as plan:
                    with trace.span("llm") as llm:
                        llm.end(output="ok", llm_usage=LlmUsage("gpt-4o", "openai", 10, i))
                    plan.end(output={"steps": 1})
                trace.metadata["request"] = i
    assert tracer.stats().sent == 12
    _, page = await get_json(http, f"{collector.url}/api/traces?limit=100")
    assert sorted(item["id"] for item in page["traces"]) == sorted(ids)
    status, document = await get_json(http, f"{collector.url}/api/traces/{ids[4]}")
    assert status == 200
    assert (document["name"], document["input"], document["tags"]) == ("agent.1", {"i": 4}, ["t"])
    assert document["metadata"] == {"request": 4}
    plan, llm = document["spans"]
    assert (plan["name"], plan["parentId"], plan["input"]) == ("plan", None, "think")
    assert (llm["name"], llm["parentId"]) == ("llm", plan["id"])
    assert llm["llmUsage"]["completionTokens"] == 4
    assert page["traces"][0]["spanCount"] == 2


async def test_a_dict_metadata_value_reads_back_as_its_json_text(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """The documented exception: OTLP attributes carry no type for JSON text, so a
    metadata value that is not a string, number or boolean comes back as that text."""
    trace = full_trace()
    async with AsyncTracing(endpoint=collector.url, **FAST) as tracer:
        assert (await tracer.send_batch([trace])).successful == 1
    _, document = await get_json(http, f"{collector.url}/api/traces/{trace.id}")
    assert document["metadata"]["nested"] == '{"a":[1]}'
    assert document["metadata"]["user"] == "u1"


# The round trip as a property, through the real processes ---------------------------

_serial = itertools.count(1)


def _id(shape: str) -> str:
    n = next(_serial)
    if shape == "hex":  # 32 hex digits, the first 16 (the OTLP span id) not all zero
        return f"{n:016x}" * 2
    if shape == "HEX":
        return f"{n:016X}" * 2
    return f"id-{n}"


# Unique per example (a counter): ids of three shapes.
IDS = st.sampled_from(["hex", "HEX", "text"]).map(_id)


def _send_and_read(url: str, trace: Trace) -> Any:
    """In a worker thread: deliver over OTLP on a loop of its own, then GET it back."""

    async def send() -> None:
        async with AsyncTracing(endpoint=url, **FAST) as tracer:
            result = await tracer.send_batch([trace])
        assert result.successful == 1, result.errors

    asyncio.run(send())
    with urllib.request.urlopen(f"{url}/api/traces/{quote(trace.id, safe='')}", timeout=30) as r:
        return json.loads(r.read())


async def test_random_traces_read_back_as_sent(collector: Collector) -> None:
    """Property: any trace (ids of every shape, unicode, nesting, usage, errors) sent with
    protocol="otlp" reads back equal to the original."""

    @settings(
        max_examples=40,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(trace=sdk_traces(IDS, SCALARS))
    def round_trip(trace: Trace) -> None:
        assert _send_and_read(collector.url, trace) == expected(trace)

    await asyncio.to_thread(round_trip)
