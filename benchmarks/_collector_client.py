"""One SDK client process for ``benchmarks.collector_ingest``.

    python -m benchmarks._collector_client ENDPOINT COUNT PREFIX

Prints ``ready`` once imported and connected, waits for a line on stdin (the start
signal shared by every client), then makes COUNT traces of two spans each with the SDK
at its defaults (batches of 100, 4 requests in flight), delivers them all, and prints
one JSON line: wall-clock start and end, and the tracer's counters.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from tracing import AsyncTracing, LlmUsage

from ._common import INPUT, METADATA, MODEL, OUTPUT, PROVIDER

USAGE = LlmUsage(MODEL, PROVIDER, prompt_tokens=152, completion_tokens=61)


async def main(endpoint: str, count: int, prefix: str) -> None:
    tracer = AsyncTracing(
        endpoint=endpoint, max_queue_size=count + 100, flush_interval=0, timeout=60
    )
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    started = time.time()
    for i in range(count):
        trace = tracer.trace(f"{prefix}.{i % 4}", input=INPUT, metadata=METADATA)
        with trace.span("retrieve") as span:
            span.end(output={"docs": 3})
        with trace.span("llm") as span:
            span.end(output=OUTPUT, llm_usage=USAGE)
        await trace.end(output=OUTPUT)
        if i % 200 == 0:
            await asyncio.sleep(0)  # let the flusher send while we produce
    await tracer.flush()
    ended = time.time()
    stats = await tracer.shutdown()
    print(
        json.dumps(
            {"start": started, "end": ended, "sent": stats.sent, "failed": stats.failed,
             "dropped": stats.dropped, "retries": stats.retries}
        ),
        flush=True,
    )  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
