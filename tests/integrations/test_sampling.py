"""sample_rate: a fixed-hash decision per trace id, taken whole, invisible when dropped."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest

from tests import _proc
from tracing import AsyncTracing, Trace
from tracing._models import new_id

from .conftest import Recorder

IDS = [f"{n:08d}-fixed-id" for n in range(2000)]


def _decisions(rate: float) -> tuple[AsyncTracing, list[bool]]:
    """enqueue()'s answer for each of IDS; the tracer sends to TRACING_ENDPOINT."""
    tracer = AsyncTracing(sample_rate=rate, flush_at=10_000, flush_interval=0)
    return tracer, [tracer.enqueue(Trace("t", id=trace_id)) for trace_id in IDS]


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
async def test_keeps_the_stated_share(recorder: Recorder, rate: float) -> None:
    """Over 5,000 random ids the kept share is within 5 binomial standard deviations."""
    n = 5000
    tracer = AsyncTracing(endpoint=recorder.url, sample_rate=rate, flush_at=n, flush_interval=0)
    kept = sum(tracer.enqueue(Trace("t", id=new_id())) for _ in range(n))
    bound = 5 * math.sqrt(n * rate * (1 - rate))
    assert abs(kept - n * rate) <= bound
    stats = await tracer.shutdown()
    assert stats.enqueued == stats.sent == len(recorder.received) == kept


async def test_same_id_same_decision_in_every_instance_and_process(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two instances, and a process with another hash seed, decide alike for each id."""
    monkeypatch.setenv("TRACING_ENDPOINT", recorder.url)
    first, here = _decisions(0.3)
    second, again = _decisions(0.3)
    assert here == again
    assert 0 < sum(here) < len(here)
    await first.shutdown()
    await second.shutdown()
    code = (
        "from tests.integrations.test_sampling import _decisions;"
        "print(''.join('1' if d else '0' for d in _decisions(0.3)[1]))"
    )
    status, out, err = await _proc.run(
        "-c", code, env={"PYTHONHASHSEED": "12345", "TRACING_ENDPOINT": recorder.url}
    )
    assert status == 0, err
    assert out.strip() == "".join("1" if d else "0" for d in here)


async def test_rate_edges_and_bad_values(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1.0 keeps all, 0.0 keeps none, and a rate outside [0, 1] raises ValueError."""
    monkeypatch.setenv("TRACING_ENDPOINT", recorder.url)
    everything, kept = _decisions(1.0)
    nothing, none_kept = _decisions(0.0)
    assert all(kept)
    assert not any(none_kept)
    await everything.shutdown()
    await nothing.shutdown()
    for bad in (-0.1, 1.5, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="sample_rate"):
            AsyncTracing(sample_rate=bad)  # type: ignore[arg-type]


async def test_sampled_out_traces_leave_no_trace(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Dropped by sampling: enqueue() is False; no counter, log line or on_error call."""
    errors: list[Any] = []
    masked: list[Any] = []

    def mask(value: Any) -> Any:
        masked.append(value)
        return value

    tracer = AsyncTracing(
        endpoint=recorder.url,
        sample_rate=0.0,
        on_error=lambda exc, traces: errors.append(traces),
        mask=mask,
    )
    caplog.set_level(logging.DEBUG, logger="tracing")
    assert tracer.enqueue(Trace("t", input="x")) is False
    async with tracer.trace("u", input="y") as trace:
        trace.span("s").end()
    stats = await tracer.shutdown()
    assert stats == type(stats)()
    assert errors == []
    assert masked == []
    assert caplog.records == []
    assert recorder.received == []


async def test_traces_are_kept_or_dropped_whole(recorder: Recorder) -> None:
    """With nested observed calls, each delivered trace holds all of its spans."""
    tracer = AsyncTracing(endpoint=recorder.url, sample_rate=0.5, flush_at=10_000)

    @tracer.observe("step")
    async def step(n: int) -> int:
        return n

    @tracer.observe("job")
    async def job(n: int) -> int:
        return sum(await asyncio.gather(step(n), step(n), step(n)))

    await asyncio.gather(*(job(n) for n in range(400)))
    stats = await tracer.shutdown()
    assert 100 < stats.sent < 300
    assert len(recorder.received) == stats.sent == stats.enqueued
    for trace in recorder.received:
        assert [s["name"] for s in trace["spans"]] == ["step"] * 3
        assert {s["input"]["n"] for s in trace["spans"]} == {trace["input"]["n"]}
