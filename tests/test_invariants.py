"""Property test: under random fault schedules and settings, no trace is lost or doubled.

Each example runs a fresh server and tracer in its own ``asyncio.run()``. Every trace must
end up accepted exactly once, or counted in ``failed``/``dropped`` and handed to
``on_error``; ``enqueued == sent + failed + dropped + queue_size + in_flight`` is checked
after every call and by a sampler task on every tick of the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._server import FaultServer, Reply, check_invariant
from tracing import AsyncTracing, DeliveryError, Trace

FAULTS = st.sampled_from(
    [
        Reply(200),
        Reply(200, results=False),
        Reply(413),
        Reply(429),
        Reply(429, {"Retry-After": "0.01"}),
        Reply(500),
        Reply(503),
        Reply(400),
        Reply(drop=True),
        Reply(delay=5),  # past the client's 0.5 s timeout
    ]
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    count = draw(st.integers(1, 40))
    max_queue_size = draw(st.integers(5, 50))
    return {
        "count": count,
        "faults": draw(st.lists(FAULTS, max_size=15)),
        "reject": draw(st.sets(st.integers(0, count - 1), max_size=5)),
        "big": draw(st.sets(st.integers(0, count - 1), max_size=3)),
        "max_body": draw(st.sampled_from([None, 1500, 6000])),
        "flushes": draw(st.sets(st.integers(0, count - 1), max_size=4)),
        "shutdown_timeout": draw(st.sampled_from([None, None, 0.0, 0.05, 0.3])),
        "options": {
            "max_queue_size": max_queue_size,
            "flush_at": draw(st.integers(1, max_queue_size)),
            "max_batch_size": draw(st.integers(1, 12)),
            "max_retries": draw(st.integers(0, 2)),
            "max_concurrency": draw(st.integers(1, 4)),
            "compression": draw(st.sampled_from([None, "gzip"])),
            "flush_interval": draw(st.sampled_from([0, 0.005])),
        },
    }


async def run_scenario(scenario: dict[str, object]) -> None:
    count = scenario["count"]
    assert isinstance(count, int)
    reported: list[str] = []

    def on_error(exc: Exception, traces: Sequence[Trace]) -> None:
        reported.extend(t.id for t in traces)

    async with FaultServer() as server:
        server.script(*scenario["faults"])  # type: ignore[misc]
        server.max_body = scenario["max_body"]  # type: ignore[assignment]
        server.reject = {f"t-{i}": "rejected by test" for i in scenario["reject"]}  # type: ignore[attr-defined]
        tracer = AsyncTracing(
            endpoint=server.url,
            timeout=0.5,
            retry_backoff=0.001,
            retry_backoff_max=0.02,
            on_error=on_error,
            **scenario["options"],  # type: ignore[arg-type]
        )
        done = asyncio.Event()

        async def sampler() -> None:
            while not done.is_set():
                check_invariant(tracer.stats())
                await asyncio.sleep(0.001)

        sampling = asyncio.create_task(sampler())
        big: set[int] = scenario["big"]  # type: ignore[assignment]
        flushes: set[int] = scenario["flushes"]  # type: ignore[assignment]
        ids = [f"t-{i}" for i in range(count)]
        for i, trace_id in enumerate(ids):
            trace = Trace("prop", id=trace_id, input="x" * 4000 if i in big else "small")
            tracer.enqueue(trace)
            check_invariant(tracer.stats())
            if i in flushes:
                try:
                    await tracer.flush()
                except DeliveryError as exc:
                    requeued = exc.requeued
                    assert requeued > 0
                check_invariant(tracer.stats())
            else:
                await asyncio.sleep(0)
        shutdown_timeout = scenario["shutdown_timeout"]
        assert shutdown_timeout is None or isinstance(shutdown_timeout, float)
        stats = await tracer.shutdown(timeout=shutdown_timeout)
        done.set()
        await sampling
        check_invariant(stats)
        assert (stats.queue_size, stats.in_flight) == (0, 0)
        assert stats.enqueued == count
        accepted = server.accepted_ids()
        assert len(accepted) == len(set(accepted)), "a trace was delivered twice"
        assert len(reported) == len(set(reported)) == stats.failed + stats.dropped
        if shutdown_timeout is None:
            assert len(accepted) == stats.sent
            assert not set(accepted) & set(reported)
            assert sorted([*accepted, *reported]) == sorted(ids)
        else:
            # A batch cut off by the timeout may have reached the server after all: the
            # client cannot know, so it counts it failed. Nothing is lost or sent twice.
            assert stats.sent <= len(accepted)
            assert set(accepted) | set(reported) == set(ids)
            assert len(set(accepted) - set(reported)) == stats.sent


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios())
def test_every_trace_delivered_once_or_accounted(scenario: dict[str, object]) -> None:
    """Random faults and settings: each trace is accepted once or failed/dropped, never lost."""
    asyncio.run(run_scenario(scenario))
