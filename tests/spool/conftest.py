"""Fixtures for the spool: a tracer factory with a spool directory, and the real collector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests._server import FaultServer, check_invariant
from tests.collector.conftest import Collector, collectors
from tracing import AsyncTracing, Stats

SPOOL_FAST: dict[str, Any] = {
    "flush_interval": 0.02,
    "retry_backoff": 0.001,
    "retry_backoff_max": 0.02,
    "max_retries": 0,
    "timeout": 2.0,
}

MakeSpooled = Callable[..., AsyncTracing]


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    """The real collector on SQLite (the spool does not care which store answers)."""
    async with collectors(str(tmp_path / "collector.db")) as start:
        yield await start()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
async def make_spooled(server: FaultServer, spool_dir: Path) -> AsyncIterator[MakeSpooled]:
    """Tracers on ``server`` with a spool in ``spool_dir``; all shut down after the test."""
    made: list[AsyncTracing] = []

    def make(**options: Any) -> AsyncTracing:
        tracer = AsyncTracing(
            **{"endpoint": server.url, "spool_dir": spool_dir, **SPOOL_FAST, **options}
        )
        made.append(tracer)
        return tracer

    yield make
    for tracer in made:
        await tracer.shutdown(timeout=5)


async def wait_stats(
    tracer: AsyncTracing, condition: Callable[[Stats], bool], timeout: float = 30.0
) -> Stats:
    """Poll the tracer's stats (checking the invariant each time) until ``condition``."""
    async with asyncio.timeout(timeout):
        while True:
            stats = tracer.stats()
            check_invariant(stats)
            if condition(stats):
                return stats
            await asyncio.sleep(0.005)
