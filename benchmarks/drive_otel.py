"""Peer: OpenTelemetry SDK, ``BatchSpanProcessor`` + OTLP/HTTP (protobuf) exporter.

One span per record, with the input, output, metadata and token counts as attributes.
Defaults except the endpoint and ``max_queue_size`` (N, so nothing is dropped). The sink
parses each ``ExportTraceServiceRequest`` and counts its spans.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ._common import (
    COMPLETION_TOKENS,
    INPUT,
    METADATA,
    MODEL,
    NAME,
    OUTPUT,
    PROMPT_TOKENS,
    PROVIDER,
    YIELD_EVERY,
    Recorder,
    main,
)

ATTRIBUTES = {f"metadata.{k}": v for k, v in METADATA.items()} | {
    "llm.model": MODEL,
    "llm.provider": PROVIDER,
}


async def body(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    processor = BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"{sink}/v1/traces"), max_queue_size=max(n, 2048)
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    clock = time.perf_counter_ns
    add = rec.add
    start = time.perf_counter()
    for i in range(n):
        t0 = clock()
        span = tracer.start_span(NAME, attributes=ATTRIBUTES)
        span.set_attribute("input", INPUT)
        span.set_attribute("output", OUTPUT)
        span.set_attribute("llm.prompt_tokens", PROMPT_TOKENS)
        span.set_attribute("llm.completion_tokens", COMPLETION_TOKENS)
        span.end()
        add(clock() - t0)
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    # force_flush() blocks until exported; run it off the loop as an asyncio app would.
    ok = await asyncio.to_thread(provider.force_flush, 300_000)
    end = time.perf_counter()
    await asyncio.to_thread(provider.shutdown)
    return {"start": start, "end": end, "flushed": ok}


if __name__ == "__main__":
    main("OpenTelemetry BatchSpanProcessor+OTLP/HTTP", body, asyncio_native=False)
