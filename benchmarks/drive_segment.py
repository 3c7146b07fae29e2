"""Peer: segment-analytics-python (``analytics.Client``, a background consumer thread).

One ``track()`` event per record with the same content as properties. Defaults except
``host`` (the sink; it posts to ``/v1/batch``) and ``max_queue_size`` (N).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from segment.analytics import Client

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


async def body(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    client = Client("bench-write-key", host=sink, max_queue_size=n)
    clock = time.perf_counter_ns
    add = rec.add
    start = time.perf_counter()
    for i in range(n):
        t0 = clock()
        client.track(
            user_id="user-1234",
            event=NAME,
            properties={
                "input": INPUT,
                "output": OUTPUT,
                "metadata": METADATA,
                "model": MODEL,
                "provider": PROVIDER,
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": COMPLETION_TOKENS,
            },
        )
        add(clock() - t0)
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    await asyncio.to_thread(client.flush)  # blocks until the queue is sent
    end = time.perf_counter()
    await asyncio.to_thread(client.shutdown)
    return {"start": start, "end": end}


if __name__ == "__main__":
    main("Segment analytics-python", body, asyncio_native=False)
