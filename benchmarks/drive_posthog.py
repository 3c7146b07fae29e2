"""Peer: posthog, the sync ``Posthog`` client (``--variant sync``, a consumer thread) and
the ``AsyncClient`` (``--variant async``).

One ``capture()`` per record with the same content as properties. Defaults except
``host`` (the sink; both post to ``/batch/``) and ``max_queue_size`` (N).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

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

PROPERTIES = {
    "input": INPUT,
    "output": OUTPUT,
    "metadata": METADATA,
    "model": MODEL,
    "provider": PROVIDER,
    "prompt_tokens": PROMPT_TOKENS,
    "completion_tokens": COMPLETION_TOKENS,
}
ASYNC = "--variant" in sys.argv and sys.argv[sys.argv.index("--variant") + 1] == "async"


async def _push(client: Any, n: int, rec: Recorder) -> float:
    clock = time.perf_counter_ns
    add = rec.add
    start = time.perf_counter()
    for i in range(n):
        t0 = clock()
        client.capture(NAME, distinct_id="user-1234", properties=dict(PROPERTIES))
        add(clock() - t0)
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    return start


async def sync_body(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    from posthog import Posthog

    client = Posthog("phc_bench", host=sink, max_queue_size=n)
    start = await _push(client, n, rec)
    await asyncio.to_thread(client.flush)
    end = time.perf_counter()
    await asyncio.to_thread(client.shutdown)
    return {"start": start, "end": end}


async def async_body(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    from posthog.async_client import AsyncClient

    client = AsyncClient("phc_bench", host=sink, max_queue_size=n)
    start = await _push(client, n, rec)
    await client.flush(timeout_seconds=None)
    end = time.perf_counter()
    await client.shutdown()
    return {"start": start, "end": end}


if __name__ == "__main__":
    if ASYNC:
        main("PostHog AsyncClient", async_body, asyncio_native=True)
    else:
        main("PostHog (sync client)", sync_body, asyncio_native=False)
