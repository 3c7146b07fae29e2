"""What most SDK tests share: the tracer settings they start from and ready-made traces.

``FAST`` retries at once and keeps no timer, but gives every HTTP attempt a long timeout:
on a loaded machine a slow answer must not turn into an extra retry and change a count.
A test whose fault needs a short timeout (a server that never answers) sets its own.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

import pytest

from tracing import AsyncTracing, DeliveryError, Trace

if TYPE_CHECKING:
    from tests._server import FaultServer

__all__ = ["FAST", "PATIENCE", "enqueue_all", "traces"]

# How much longer than usual to wait for a server or a child process: `make mutate` runs
# the suite niced on a shared machine, where a child gets a small share of a CPU. Not
# more: a mutant that stops a wake-up is killed only when that wait runs out, so this
# factor multiplies the run's time. $TEST_PATIENCE overrides it.
PATIENCE = float(os.environ.get("TEST_PATIENCE", 3.0 if "MUTANT_UNDER_TEST" in os.environ else 1.0))

FAST: dict[str, Any] = {
    "flush_interval": 0,
    "retry_backoff": 0.001,
    "retry_backoff_max": 0.05,
    "timeout": 30.0,
}


def traces(n: int, prefix: str = "t") -> list[Trace]:
    """``n`` traces named ``{prefix}{i}`` with ids ``{prefix}-{i}``."""
    return [Trace(f"{prefix}{i}", id=f"{prefix}-{i}") for i in range(n)]


def enqueue_all(tracer: AsyncTracing, items: list[Trace]) -> None:
    """Queue every trace, asserting that none was refused."""
    for item in items:
        assert tracer.enqueue(item), item.id


async def flush_behind_a_batch_in_flight(
    tracer: AsyncTracing, server: FaultServer
) -> DeliveryError:
    """The flusher sends a-0, a-1 (``flush_at=2``) and the server holds them; then b-0 is
    queued and ``flush()`` called, which sends b-0 and waits for a-*; the server then
    answers both. Returns the ``DeliveryError`` that flush() raised."""
    server.gate = asyncio.Event()
    enqueue_all(tracer, traces(2, "a"))  # flush_at: the flusher sends a-0, a-1
    await server.wait_for_requests(1)
    enqueue_all(tracer, traces(1, "b"))
    flushing = asyncio.create_task(tracer.flush())  # sends b-0, then waits for a-*
    await server.wait_for_requests(2)
    server.gate.set()
    with pytest.raises(DeliveryError) as info:
        await flushing
    return info.value
