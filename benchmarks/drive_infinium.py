"""Peer: infinium-o2, ``AsyncInfiniumClient.send_tasks_batch`` (one POST per record).

It has no queue: records are built up front as ``TaskData`` and sent in one
``send_tasks_batch`` call (its default ``max_concurrent=5``), so there is no per-call
enqueue cost to time. It posts each record to ``{base_url}/agents/{agent_id}/trace``;
``base_url`` points at the sink. Its client-side rate limit (10 requests/s by default)
is turned off, or 100,000 records would take hours; N defaults to 2,000 for the same
reason (one request per record).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from infinium import AsyncInfiniumClient
from infinium.types import LlmUsage, TaskData

from ._common import (
    COMPLETION_TOKENS,
    INPUT,
    MODEL,
    NAME,
    OUTPUT,
    PROMPT_TOKENS,
    PROVIDER,
    Recorder,
    main,
)


async def body(sink: str, n: int, rec: Recorder) -> dict[str, Any]:
    client = AsyncInfiniumClient(
        agent_id=str(uuid.UUID(int=1)),  # it insists on a UUID
        agent_secret="bench-secret",
        base_url=f"{sink}/api/v1",
        enable_rate_limiting=False,
    )
    now = datetime.now(UTC).isoformat()
    usage = LlmUsage(
        model=MODEL,
        provider=PROVIDER,
        prompt_tokens=PROMPT_TOKENS,
        completion_tokens=COMPLETION_TOKENS,
    )
    tasks = [
        TaskData(
            name=NAME,
            description=INPUT,
            current_datetime=now,
            duration=0.001,
            llm_usage=usage,
            input_summary=INPUT[:200],
            output_summary=OUTPUT,
        )
        for _ in range(n)
    ]
    start = time.perf_counter()
    async with client:
        result = await client.send_tasks_batch(tasks)
    end = time.perf_counter()
    return {"start": start, "end": end, "sdk_sent": result.successful, "sdk_failed": result.failed}


if __name__ == "__main__":
    main("Infinium AsyncInfiniumClient", body, asyncio_native=True, default_n=2_000)
