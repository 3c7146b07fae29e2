"""Root fixtures: a clean ``TRACING_*`` environment, the fault-injecting server, a tracer
factory that shuts every tracer down after the test, and the hypothesis profiles.

Hypothesis runs the ``ci`` profile unless ``HYPOTHESIS_PROFILE`` names another: the same
examples on every run (``derandomize``), a bounded count, no example database, so a red
run is the code's fault and replays by itself. ``HYPOTHESIS_PROFILE=explore`` searches
new examples, many more of them.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests import _mutmut
from tests._helpers import FAST
from tests._server import FaultServer
from tracing import AsyncTracing

__all__ = ["FAST", "MakeTracer"]

# Property tests are deterministic and bounded in CI: the same examples every run
# (derandomize; no example database), a fixed budget, no deadline on a loaded machine.
_SLOW_IS_FINE = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.function_scoped_fixture,
]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.register_profile(
    "explore", max_examples=300, deadline=None, suppress_health_check=_SLOW_IS_FINE
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After a failed test, collect its garbage before the next test starts: what its
    failure left behind (never-awaited coroutines, unclosed transports) is then reported
    against it, not against whichever test runs when the collector gets to it."""
    try:
        return (yield)
    finally:
        if item.stash.get(_FAILED, False):
            gc.collect()


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a ``TRACING_*`` or ``OTEL_*`` variable it did not set itself."""
    for name in list(os.environ):
        if name.startswith(("TRACING_", "OTEL_")):
            monkeypatch.delenv(name)


class _CrashWatch(logging.Handler):
    """Keeps the "tracing flusher crashed" records: each one is an SDK bug."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.crashes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "flusher crashed" in record.getMessage():
            self.crashes.append(record.getMessage())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "flusher_crashes: the test crashes the flusher on purpose (its restart)"
    )


@pytest.fixture(autouse=True)
def no_flusher_crash(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a test is about, the background flusher must never die in it: the SDK
    would restart it, so the test itself might not notice. Unless the test is about that
    restart (``@pytest.mark.flusher_crashes``)."""
    if request.node.get_closest_marker("flusher_crashes"):
        yield
        return
    watch = _CrashWatch()
    logger = logging.getLogger("tracing")
    logger.addHandler(watch)
    try:
        yield
    finally:
        logger.removeHandler(watch)
    if watch.crashes:
        pytest.fail(f"the tracing flusher crashed: {watch.crashes}")


@pytest.fixture(autouse=True)
def _credit_child_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under ``make mutate`` only: what this test's children ran counts as its coverage."""
    yield
    _mutmut.collect(request.node.nodeid)


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


MakeTracer = Callable[..., AsyncTracing]


@pytest.fixture
async def make_tracer(server: FaultServer) -> AsyncIterator[MakeTracer]:
    """Build tracers pointed at ``server`` with ``FAST`` settings; shut them all down after."""
    made: list[AsyncTracing] = []

    def make(**options: Any) -> AsyncTracing:
        tracer = AsyncTracing(**{"endpoint": server.url, **FAST, **options})
        made.append(tracer)
        return tracer

    yield make
    for tracer in made:
        await tracer.shutdown(timeout=5)
