"""Root fixtures: a clean ``TRACING_*`` environment, the fault-injecting server, and a
tracer factory with fast retry settings that shuts every tracer down after the test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests._server import FaultServer
from tracing import AsyncTracing

# Property tests are deterministic and bounded in CI: the same examples every run
# (derandomize; no example database), a fixed budget, no deadline on a loaded machine.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FAST: dict[str, Any] = {
    "flush_interval": 0,
    "retry_backoff": 0.001,
    "retry_backoff_max": 0.05,
    "timeout": 2.0,
}


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a ``TRACING_*`` or ``OTEL_*`` variable it did not set itself."""
    for name in list(os.environ):
        if name.startswith(("TRACING_", "OTEL_")):
            monkeypatch.delenv(name)


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


MakeTracer = Callable[..., AsyncTracing]


@pytest.fixture
async def make_tracer(server: FaultServer) -> AsyncIterator[MakeTracer]:
    """Build tracers pointed at ``server`` with fast retries; shut them all down after."""
    made: list[AsyncTracing] = []

    def make(**options: Any) -> AsyncTracing:
        tracer = AsyncTracing(**{"endpoint": server.url, **FAST, **options})
        made.append(tracer)
        return tracer

    yield make
    for tracer in made:
        await tracer.shutdown(timeout=5)
