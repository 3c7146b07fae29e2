"""start/shutdown, tracing calls and the rules every call keeps (``_client``)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests._helpers import FAST, enqueue_all, traces
from tests._proc import run_script
from tests._server import FaultServer, Reply, check_invariant
from tests.conftest import MakeTracer
from tracing import AsyncTracing, Stats, Trace, TracingError


def flusher_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "tracing-flusher" and not t.done()]


async def test_async_with_starts_and_shuts_down(server: FaultServer) -> None:
    """``async with`` starts the flusher and delivers everything on exit."""
    async with AsyncTracing(endpoint=server.url, **FAST) as tracer:
        assert len(flusher_tasks()) == 1
        for trace in traces(3):
            tracer.enqueue(trace)
    assert len(server.accepted_ids()) == 3
    assert flusher_tasks() == []
    stats = tracer.stats()
    assert (stats.sent, stats.queue_size, stats.in_flight) == (3, 0, 0)


async def test_start_is_idempotent(make_tracer: MakeTracer) -> None:
    """Calling start() twice runs a single flusher task."""
    tracer = make_tracer()
    await tracer.start()
    await tracer.start()
    assert len(flusher_tasks()) == 1


async def test_lazy_start_on_first_enqueue(server: FaultServer, make_tracer: MakeTracer) -> None:
    """The first enqueue inside a running loop starts the flusher; flush_at then sends."""
    tracer = make_tracer(flush_at=2)
    assert flusher_tasks() == []
    tracer.enqueue(Trace("a"))
    assert len(flusher_tasks()) == 1
    tracer.enqueue(Trace("b"))
    await server.wait_for_traces(2)


async def test_shutdown_returns_final_stats_and_is_idempotent(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """shutdown() delivers, returns Stats with nothing queued or in flight, and repeats safely."""
    tracer = make_tracer(flush_at=100)
    for trace in traces(7):
        tracer.enqueue(trace)
    stats = await tracer.shutdown()
    assert isinstance(stats, Stats)
    assert (stats.enqueued, stats.sent, stats.queue_size, stats.in_flight) == (7, 7, 0, 0)
    again = await tracer.shutdown()
    assert again == stats
    assert len(server.requests) == 1


async def test_concurrent_shutdowns_share_one_drain(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Two shutdown() calls at once run one drain: the batch gets its attempts once, and
    the second call waits for that drain and returns its stats."""
    tracer = make_tracer(flush_at=100, max_retries=2)
    server.default = Reply(503)
    server.gate = asyncio.Event()
    for trace in traces(4):
        tracer.enqueue(trace)
    first = asyncio.create_task(tracer.shutdown())
    await server.wait_for_requests(1)
    second = asyncio.create_task(tracer.shutdown())
    done, _ = await asyncio.wait({first, second}, timeout=0.2)
    assert not done, "a shutdown() returned while the drain was still running"
    server.gate.set()
    one, other = await asyncio.gather(first, second)
    assert one is other
    assert (one.failed, one.sent, one.queue_size, one.in_flight) == (4, 0, 0, 0)
    assert len(server.requests) == 3  # one drain: 1 + max_retries attempts, not twice that


async def test_shutdown_counts_undelivered_as_failed_and_never_raises(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing server: shutdown() returns, every trace is failed, logged and reported."""
    reported: list[str] = []
    errors: list[Exception] = []

    def on_error(exc: Exception, failed: object) -> None:
        errors.append(exc)
        reported.extend(t.id for t in failed)  # type: ignore[attr-defined]

    tracer = make_tracer(flush_at=100, on_error=on_error)
    server.default = Reply(503)
    items = traces(5)
    for trace in items:
        tracer.enqueue(trace)
    with caplog.at_level(logging.WARNING, logger="tracing"):
        stats = await tracer.shutdown()
    assert (stats.failed, stats.sent, stats.queue_size, stats.in_flight) == (5, 0, 0, 0)
    assert sorted(reported) == sorted(t.id for t in items)
    assert all(isinstance(exc, TracingError) and "503" in str(exc) for exc in errors)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    prefix = "tracing failed to deliver 5 trace(s) (no answer after retries: "
    assert any(m.startswith(prefix) and "503" in m and "t-0" in m for m in warnings), warnings
    assert len(server.requests) == 3  # every batch gets its attempts once
    check_invariant(stats)


async def test_shutdown_timeout_bounds_the_call(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Against a server that never answers, shutdown(timeout) returns about on time."""
    reported: list[str] = []
    tracer = make_tracer(
        flush_at=100, timeout=30, on_error=lambda exc, ts: reported.extend(t.id for t in ts)
    )
    server.default = Reply(delay=60)
    for trace in traces(3):
        tracer.enqueue(trace)
    loop = asyncio.get_running_loop()
    started = loop.time()
    stats = await tracer.shutdown(timeout=0.3)
    # Against a 60 s stall: bounded by the timeout, not by the server.
    assert loop.time() - started < 30
    assert flusher_tasks() == []  # cancelled, not left running
    assert (stats.failed, stats.queue_size, stats.in_flight) == (3, 0, 0)
    assert sorted(reported) == ["t-0", "t-1", "t-2"]
    check_invariant(stats)


async def test_shutdown_timeout_cuts_retry_waits(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A long Retry-After or backoff does not outlive shutdown's timeout."""
    tracer = make_tracer(flush_at=100, retry_backoff=5, retry_backoff_max=60)
    server.default = Reply(429, {"Retry-After": "60"})
    tracer.enqueue(Trace("t"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    stats = await tracer.shutdown(timeout=0.3)
    assert loop.time() - started < 30  # against a 60 s Retry-After
    assert stats.failed == 1


async def test_shutdown_stops_the_timer_and_closes_owned_session(
    make_tracer: MakeTracer,
) -> None:
    """After shutdown no flusher task remains and the owned session is closed."""
    tracer = make_tracer(flush_interval=0.01)
    tracer.enqueue(Trace("t"))
    session = tracer._flusher.exporter._get_session()
    await tracer.shutdown()
    assert flusher_tasks() == []
    assert session.closed


async def test_enqueue_after_shutdown_is_dropped(make_tracer: MakeTracer) -> None:
    """enqueue() after shutdown returns False and counts the trace as dropped."""
    reported: list[Exception] = []
    tracer = make_tracer(on_error=lambda exc, ts: reported.append(exc))
    await tracer.shutdown()
    assert tracer.enqueue(Trace("late")) is False
    stats = tracer.stats()
    assert (stats.enqueued, stats.dropped) == (1, 1)
    assert isinstance(reported[0], TracingError)
    check_invariant(stats)


async def test_trace_end_twice_sends_once(server: FaultServer, make_tracer: MakeTracer) -> None:
    """A second trace.end() is ignored: the trace is sent once."""
    tracer = make_tracer()
    trace = tracer.trace("once")
    await trace.end(output=1)
    await trace.end(output=2)
    assert tracer.enqueue(trace) is False  # already queued
    await tracer.flush()
    assert server.accepted_ids() == [trace.id]
    assert server.requests[0].traces[0]["output"] == 1
    assert tracer.stats().enqueued == 1


async def test_async_with_trace_records_exception_and_reraises(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """An exception in ``async with tracer.trace()`` sets status error and propagates."""
    tracer = make_tracer()
    with pytest.raises(RuntimeError, match="model down"):
        async with tracer.trace("fails") as trace:
            raise RuntimeError("model down")
    await tracer.flush()
    wire = server.requests[0].traces[0]
    assert (wire["id"], wire["status"], wire["error"]) == (trace.id, "error", "model down")


async def test_async_with_trace_success(server: FaultServer, make_tracer: MakeTracer) -> None:
    """A clean ``async with tracer.trace()`` sends status ok with its fields."""
    tracer = make_tracer()
    async with tracer.trace("ok", input="q", description="d", input_summary="s") as trace:
        with trace.span("step", input=1) as span:
            span.end(output=2)
    await tracer.flush()
    wire = server.requests[0].traces[0]
    assert (wire["status"], wire["input"], wire["description"], wire["inputSummary"]) == (
        "ok",
        "q",
        "d",
        "s",
    )
    assert wire["spans"][0]["output"] == 2


async def test_enqueue_ends_an_open_trace(server: FaultServer, make_tracer: MakeTracer) -> None:
    """enqueue() of a trace never ended ends it (and its open spans) first."""
    tracer = make_tracer()
    trace = Trace("open")
    trace.span("s")
    assert tracer.enqueue(trace)
    await tracer.flush()
    wire = server.requests[0].traces[0]
    assert wire["endTime"] is not None
    assert wire["spans"][0]["endTime"] == wire["endTime"]


@pytest.mark.parametrize("bad", [None, {"name": "x"}, "trace"])
def test_enqueue_rejects_what_is_not_a_trace(make_tracer: MakeTracer, bad: object) -> None:
    """enqueue() of something that is not a Trace is a ValueError naming the argument."""
    tracer = make_tracer()
    with pytest.raises(ValueError, match=r"trace must be a tracing\.Trace"):
        tracer.enqueue(bad)  # type: ignore[arg-type]
    assert tracer.stats().enqueued == 0


async def test_hot_path_never_waits_for_the_network(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """trace.end() and enqueue() return while the server holds every request."""
    tracer = make_tracer(flush_at=1, max_concurrency=1)
    server.gate = asyncio.Event()
    for i in range(5):
        trace = tracer.trace(f"t{i}")
        # The server holds every request until the end: a bound would only be hit by waiting.
        await asyncio.wait_for(trace.end(), timeout=10)
    await server.wait_for_requests(1)
    assert tracer.enqueue(Trace("more")) is True
    server.gate.set()
    await tracer.flush()
    assert len(server.accepted_ids()) == 6


async def test_enabled_false_is_a_no_op(server: FaultServer) -> None:
    """enabled=False: nothing is sent, enqueue returns False, counters stay zero."""
    tracer = AsyncTracing(endpoint=server.url, enabled=False, flush_at=1)
    await tracer.start()
    async with tracer.trace("t") as trace:
        with trace.span("s"):
            pass
    assert tracer.enqueue(Trace("x")) is False
    await tracer.flush()
    stats = await tracer.shutdown()
    assert stats == Stats()
    assert server.requests == []
    assert flusher_tasks() == []


async def test_on_error_that_raises_is_contained(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken on_error callback is logged, never raised into the host."""

    def broken(exc: Exception, traces: object) -> None:
        raise ValueError("callback bug")

    tracer = make_tracer(on_error=broken, max_queue_size=1, flush_at=1)
    server.default = Reply(400)
    assert tracer.enqueue(Trace("a")) is True
    assert tracer.enqueue(Trace("b")) is False
    await tracer.flush()
    assert tracer.stats().failed == 1
    assert "tracing on_error callback raised" in [r.getMessage() for r in caplog.records]


async def test_key_never_appears_in_logs(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """The publishable key is in no log line, whatever goes wrong."""
    key = "pk_secret_zyx987"
    tracer = make_tracer(publishable_key=key, max_queue_size=2, flush_at=2, max_retries=1)
    server.script(Reply(401), Reply(503), Reply(503), Reply(413))
    with caplog.at_level(logging.DEBUG):
        for trace in traces(6):
            tracer.enqueue(trace)
        await tracer.shutdown()
        assert key not in repr(tracer)
    assert caplog.records
    assert all(key not in r.getMessage() for r in caplog.records)
    assert key not in caplog.text
    assert server.requests[0].headers["Authorization"] == f"Bearer {key}"


async def test_restart_after_shutdown(server: FaultServer, make_tracer: MakeTracer) -> None:
    """start() after shutdown() makes the tracer usable again."""
    tracer = make_tracer()
    await tracer.shutdown()
    await tracer.start()
    tracer.enqueue(Trace("again", id="again"))
    await tracer.flush()
    assert server.accepted_ids() == ["again"]


@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_traces_enqueued_during_shutdown_are_accounted(
    server: FaultServer, make_tracer: MakeTracer, timeout: float | None
) -> None:
    """Traces ended while shutdown() runs are delivered, failed or dropped; none stay queued."""
    reported: list[str] = []
    tracer = make_tracer(flush_at=3, on_error=lambda exc, ts: reported.extend(t.id for t in ts))
    server.default = Reply(delay=0.01)
    for trace in traces(5, "before"):
        tracer.enqueue(trace)
    made: list[str] = []
    stop = asyncio.Event()

    async def keep_tracing() -> None:
        while not stop.is_set():
            trace = Trace("during")
            made.append(trace.id)
            tracer.enqueue(trace)
            check_invariant(tracer.stats())
            await asyncio.sleep(0)

    producer = asyncio.create_task(keep_tracing())
    await asyncio.sleep(0)
    stats = await tracer.shutdown(timeout=timeout)
    stop.set()
    await producer
    final = tracer.stats()
    assert (stats.queue_size, stats.in_flight) == (0, 0)
    assert (final.queue_size, final.in_flight) == (0, 0)
    check_invariant(final)
    everything = [f"before-{i}" for i in range(5)] + made
    assert sorted(server.accepted_ids() + reported) == sorted(everything)


async def test_shutdown_of_an_unused_tracer(server: FaultServer) -> None:
    """A tracer never used shuts down at once with zero stats and no request."""
    tracer = AsyncTracing(endpoint=server.url)
    assert await tracer.shutdown() == Stats()
    assert server.requests == []


async def test_start_during_shutdown_waits_for_it_then_reopens(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """start() while shutdown() drains waits for the drain to end, then opens the tracer
    again: what was queued before is delivered by the drain, what comes after by the new
    flusher."""
    tracer = make_tracer()
    server.gate = asyncio.Event()
    enqueue_all(tracer, traces(2, "before"))
    stopping = asyncio.create_task(tracer.shutdown())
    await server.wait_for_requests(1)
    starting = asyncio.create_task(tracer.start())
    done, _ = await asyncio.wait({starting}, timeout=0.2)
    assert not done, "start() returned while the drain was still running"
    server.gate.set()
    stats = await stopping
    await starting
    assert "state=running" in repr(tracer)
    assert stats.sent == 2
    enqueue_all(tracer, traces(1, "after"))
    await tracer.flush()
    assert sorted(server.accepted_ids()) == ["after-0", "before-0", "before-1"]


async def test_repr_shows_endpoint_state_and_counts(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """repr() names the endpoint, the state and what is queued and in flight."""
    tracer = make_tracer(endpoint=server.url + "/p/", flush_at=100)
    assert repr(tracer) == f"<AsyncTracing {server.url}/p state=new queued=0 in_flight=0>"
    enqueue_all(tracer, traces(3))
    assert repr(tracer) == f"<AsyncTracing {server.url}/p state=running queued=3 in_flight=0>"
    await tracer.shutdown()
    assert repr(tracer) == f"<AsyncTracing {server.url}/p state=closed queued=0 in_flight=0>"


async def test_trace_takes_copies_of_metadata_and_tags(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """trace(metadata=, tags=) keeps copies: later changes to the caller's dict or list do
    not reach the trace; tags may be any iterable."""
    tracer = make_tracer()
    metadata, tags = {"k": 1}, ["a"]
    trace = tracer.trace("t", id="copied", metadata=metadata, tags=tags)
    other = tracer.trace("u", id="iterable", tags=(tag for tag in ("x", "y")))
    metadata["k"] = 2
    tags.append("b")
    await trace.end()
    await other.end()
    await tracer.flush()
    first, second = server.requests[0].traces
    assert (first["id"], first["metadata"], first["tags"]) == ("copied", {"k": 1}, ["a"])
    assert (second["metadata"], second["tags"]) == ({}, ["x", "y"])


async def test_a_trace_never_ended_is_reported_when_collected() -> None:
    """``tracer.trace()`` without ``end()`` was never sent and never mentioned; now each
    such trace, when garbage-collected (cycles too), is counted in a rate-limited WARNING
    naming it, and shutdown() logs what the rate limit held back."""
    code, out, err = await run_script("never_ended.py")
    assert code == 0, err
    assert out.strip() == "done"
    lines = [line for line in err.splitlines() if "never ended" in line]
    assert len(lines) == 2, err  # the first at once, the rest at shutdown()
    counts = [int(line.split("tracing: ")[1].split(" ")[0]) for line in lines]
    assert counts == [1, 3]
    for name, trace_id in [(f"forgotten-{i}", f"lost-{i}") for i in range(3)] + [
        ("in-a-cycle", "lost-cycle")
    ]:
        assert f"'{name}' ({trace_id})" in err
    assert not any("fine-" in line for line in lines)
    assert "Exception ignored" not in err
