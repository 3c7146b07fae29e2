"""Batching, timers, requeueing and outage behaviour of the background flusher."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from tests._helpers import enqueue_all, flush_behind_a_batch_in_flight, traces
from tests._server import FaultServer, Reply, check_invariant
from tests.conftest import MakeTracer
from tracing import DeliveryError, Trace, TracingError


@pytest.mark.parametrize(("count", "size"), [(250, 7), (10, 10), (11, 10), (1, 100)])
async def test_batches_never_exceed_max_batch_size(
    server: FaultServer, make_tracer: MakeTracer, count: int, size: int
) -> None:
    """Every request holds at most max_batch_size traces; each trace arrives once."""
    tracer = make_tracer(max_batch_size=size, max_queue_size=1000, flush_at=1000)
    items = traces(count)
    enqueue_all(tracer, items)
    await tracer.flush()
    assert all(1 <= len(r.trace_ids) <= size for r in server.requests)
    assert sorted(server.accepted_ids()) == sorted(t.id for t in items)
    stats = tracer.stats()
    assert (stats.sent, stats.batches) == (count, len(server.requests))
    check_invariant(stats)


async def test_flush_at_triggers_send_without_flush(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Reaching flush_at sends a batch with no flush() call and no timer."""
    tracer = make_tracer(flush_at=5, flush_interval=0)
    enqueue_all(tracer, traces(4))
    enqueue_all(tracer, traces(1, "last"))
    await server.wait_for_traces(5)
    assert len(server.requests[0].trace_ids) == 5


async def test_flush_interval_sends_partial_batch(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """The interval timer sends what is queued though flush_at was not reached."""
    tracer = make_tracer(flush_at=100, flush_interval=0.05)
    enqueue_all(tracer, traces(3))
    await server.wait_for_traces(3)
    assert server.requests[0].trace_ids == ["t-0", "t-1", "t-2"]


async def test_flush_interval_zero_disables_the_timer(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """flush_interval=0 sends nothing until flush(), while a timed tracer sends thrice."""
    quiet = make_tracer(flush_at=100, flush_interval=0)
    timed = make_tracer(flush_at=100, flush_interval=0.05)
    enqueue_all(quiet, traces(3, "quiet"))
    for round_ in range(3):  # three timer rounds of the other tracer pass meanwhile
        enqueue_all(timed, traces(1, f"timed{round_}"))
        await server.wait_for_traces(round_ + 1)
    assert not any(i.startswith("quiet") for i in server.accepted_ids())
    assert quiet.stats().queue_size == 3
    await quiet.flush()
    assert sum(i.startswith("quiet") for i in server.accepted_ids()) == 3


async def test_flush_delivers_everything_before_returning(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """When flush() returns, every trace queued before it has been accepted."""
    tracer = make_tracer(flush_at=1000, max_queue_size=1000, max_batch_size=10)
    enqueue_all(tracer, traces(95))
    await tracer.flush()
    assert len(server.accepted_ids()) == 95
    stats = tracer.stats()
    assert (stats.sent, stats.queue_size, stats.in_flight) == (95, 0, 0)


async def test_flush_waits_for_batches_in_flight(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """flush() does not return while a batch the flusher started is still in flight."""
    tracer = make_tracer(flush_at=1)
    server.gate = asyncio.Event()
    enqueue_all(tracer, traces(1))
    await server.wait_for_requests(1)
    flushing = asyncio.create_task(tracer.flush())
    done, _ = await asyncio.wait({flushing}, timeout=0.2)
    assert not done
    assert tracer.stats().in_flight == 1
    server.gate.set()
    await flushing
    assert server.accepted_ids() == ["t-0"]
    assert tracer.stats().sent == 1


async def test_failed_batch_requeued_to_front_in_order(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """After its last retry a batch goes back to the front, in order; flush() raises."""
    tracer = make_tracer(max_retries=1, flush_at=1000)
    server.default = Reply(503)
    enqueue_all(tracer, traces(5))
    with pytest.raises(DeliveryError) as info:
        await tracer.flush()
    assert info.value.requeued == 5
    assert isinstance(info.value.__cause__, TracingError)
    assert "503" in str(info.value.__cause__)
    stats = tracer.stats()
    assert (stats.queue_size, stats.in_flight, stats.retries, stats.failed) == (5, 0, 1, 0)
    check_invariant(stats)
    enqueue_all(tracer, traces(1, "later"))
    server.default = Reply(200)
    await tracer.flush()
    assert server.requests[-1].trace_ids == ["t-0", "t-1", "t-2", "t-3", "t-4", "later-0"]
    assert server.accepted_ids() == ["t-0", "t-1", "t-2", "t-3", "t-4", "later-0"]
    check_invariant(tracer.stats())


async def test_requeue_keeps_order_across_several_batches(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """With several batches, the failed one returns ahead of those never sent."""
    tracer = make_tracer(max_retries=0, flush_at=1000, max_batch_size=2, max_concurrency=1)
    server.respond_with(500)
    enqueue_all(tracer, traces(6))
    with pytest.raises(DeliveryError):
        await tracer.flush()
    await tracer.flush()
    assert server.accepted_ids() == [f"t-{i}" for i in range(6)]


async def test_flush_raises_only_for_retryable_failures(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """A 400 is reported (failed, logged as rejected by the collector), not raised; a
    persistent 503 raises DeliveryError, logged as requeued with its cause."""
    tracer = make_tracer(max_retries=0, flush_at=1000)
    server.respond_with(400)
    enqueue_all(tracer, traces(1, "bad"))
    await tracer.flush()
    assert tracer.stats().failed == 1
    assert "tracing failed to deliver 1 trace(s) (rejected by the collector: HTTP 400" in (
        caplog.text
    )
    server.respond_with(503)
    enqueue_all(tracer, traces(1, "retry"))
    with pytest.raises(DeliveryError):
        await tracer.flush()
    (requeued,) = [r for r in caplog.records if "requeued them" in r.getMessage()]
    assert requeued.getMessage().startswith(
        "tracing could not deliver 1 trace(s), requeued them: HTTP 503"
    )
    assert requeued.levelno == logging.WARNING


async def test_outage_backs_off_and_recovers(server: FaultServer, make_tracer: MakeTracer) -> None:
    """During an outage the flusher rests between rounds instead of spinning, then recovers."""
    tracer = make_tracer(
        flush_at=1, max_retries=0, retry_backoff=0.01, retry_backoff_max=0.2, flush_interval=0.01
    )
    server.default = Reply(503)
    enqueue_all(tracer, traces(5))
    await server.wait_for_requests(2)  # it does try again on its own
    await asyncio.sleep(1.0)  # the outage lasts one second
    during = len(server.requests)
    server.default = Reply(200)
    await server.wait_for_traces(5)
    await tracer.flush()  # settles the batch whose answer is on its way
    # Rests of 0.05, 0.1, 0.2, 0.2 ... s allow about 8 rounds a second; spinning makes hundreds.
    assert 2 <= during <= 25
    stats = tracer.stats()
    assert (stats.sent, stats.failed, stats.dropped) == (5, 0, 0)
    check_invariant(stats)


async def test_outage_keeps_what_fits_and_drops_the_rest(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A long outage loses nothing that fits in the queue; the overflow is counted dropped."""
    tracer = make_tracer(max_queue_size=10, flush_at=5, max_retries=0, retry_backoff_max=0.05)
    server.default = Reply(503)
    for i in range(15):
        tracer.enqueue(Trace("t", id=f"t-{i}"))
        check_invariant(tracer.stats())
    await server.wait_for_requests(2)
    server.default = Reply(200)
    await server.wait_for_traces(10)  # the flusher recovers on its own
    await tracer.flush()
    stats = tracer.stats()
    assert (stats.enqueued, stats.sent, stats.dropped, stats.failed) == (15, 10, 5, 0)
    assert sorted(server.accepted_ids()) == sorted(f"t-{i}" for i in range(10))
    check_invariant(stats)


async def test_queue_bound_drops_newest_and_warns_once(
    make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """Past max_queue_size, enqueue() returns False, counts dropped, calls on_error, warns once."""
    reported: list[tuple[Exception, list[str]]] = []
    tracer = make_tracer(
        max_queue_size=5,
        flush_at=5,
        on_error=lambda exc, ts: reported.append((exc, [t.id for t in ts])),
    )
    with caplog.at_level(logging.WARNING, logger="tracing"):
        results = [tracer.enqueue(Trace("t", id=f"t-{i}")) for i in range(12)]
    assert results == [True] * 5 + [False] * 7
    stats = tracer.stats()
    assert (stats.enqueued, stats.dropped) == (12, 7)
    check_invariant(stats)
    assert [ids for _, ids in reported] == [[f"t-{i}"] for i in range(5, 12)]
    assert all(isinstance(exc, TracingError) for exc, _ in reported)
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 1
    assert drops[0].levelno == logging.WARNING
    assert "1 trace" in drops[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tracing"):
        await tracer.shutdown()
    later = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert [r.getMessage().split("dropped ")[1].split(" ")[0] for r in later] == ["6"]


async def test_the_drop_warning_counts_each_reason(
    make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning said "the queue was full or the tracer shut down"; now it says which,
    with a count for each."""
    tracer = make_tracer(max_queue_size=2, flush_at=2)
    with caplog.at_level(logging.WARNING, logger="tracing"):
        for i in range(5):
            tracer.enqueue(Trace("t", id=f"t-{i}"))  # 2 queued, 3 over
        caplog.clear()  # the first drop is logged at once; the rest wait for the next line
        stopping = asyncio.create_task(tracer.shutdown())
        await asyncio.sleep(0)  # shutdown() has begun: new traces are refused
        tracer.enqueue(Trace("late", id="late-1"))
        await stopping
    (line,) = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert line == (
        "tracing dropped 3 trace(s): 2 because the queue is full, 1 because the tracer is shut down"
    )


async def test_max_concurrency_is_never_exceeded(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """At most max_concurrency requests are in flight, and that many are used."""
    tracer = make_tracer(max_batch_size=1, max_concurrency=3, flush_at=100)
    server.gate = asyncio.Event()
    enqueue_all(tracer, traces(12))
    flushing = asyncio.create_task(tracer.flush())
    await server.wait_until(lambda: server.in_flight >= 3)
    with pytest.raises(TimeoutError):  # a fourth request would show up here
        await server.wait_until(lambda: server.in_flight > 3, timeout=0.2)
    server.gate.set()
    await flushing
    assert server.max_in_flight == 3
    assert len(server.accepted_ids()) == 12


async def test_rate_limit_spaces_requests(server: FaultServer, make_tracer: MakeTracer) -> None:
    """rate_limit=2 lets a burst of 2 through, then about one request per half second:
    per second, not per minute (aiolimiter's default period), which would take 90 s."""
    tracer = make_tracer(max_batch_size=1, max_concurrency=5, rate_limit=2, flush_at=100)
    enqueue_all(tracer, traces(5))
    # Measured from before the first token is taken: a slow first request (a loaded
    # machine) must not shorten the spacing seen.
    started = time.monotonic()
    await asyncio.wait_for(tracer.flush(), timeout=30)  # 1.5 s at 2/s; 90 s at 2/min
    times = sorted(r.time for r in server.requests)
    assert len(times) == 5
    assert times[-1] - started >= 1.4  # 3 requests past the burst at 2/s: 1.5 s at least
    assert len(server.accepted_ids()) == 5


async def test_rests_between_failed_rounds_double(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Through an outage the flusher rests after each failed round, from retry_backoff
    doubling: 0.1, 0.2, 0.4, 0.8 s between the rounds' requests (no retries within one)."""
    server.default = Reply(503)
    tracer = make_tracer(flush_at=1, max_retries=0, retry_backoff=0.1, retry_backoff_max=10)
    enqueue_all(tracer, traces(1))
    await server.wait_for_requests(5)
    times = [r.time for r in server.batch_requests()[:5]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps[0] >= 0.09
    assert gaps[3] >= 0.75  # three doublings later; a rest that never grew would be 0.1
    assert tracer.stats().sent == 0


async def test_invariant_holds_throughout_a_busy_run(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """The stats invariant holds at every sampled moment while batches fail and succeed."""
    tracer = make_tracer(flush_at=3, max_batch_size=3, max_queue_size=40, max_retries=1)
    server.script(*[Reply(503), Reply(200), Reply(400), Reply(drop=True), Reply(429)] * 4)
    for i in range(60):
        tracer.enqueue(Trace("t", id=f"t-{i}"))
        check_invariant(tracer.stats())
        await asyncio.sleep(0)
        check_invariant(tracer.stats())
    stats = await tracer.shutdown()
    check_invariant(stats)
    assert (stats.queue_size, stats.in_flight) == (0, 0)
    assert len(server.accepted_ids()) == len(set(server.accepted_ids())) == stats.sent


async def test_concurrent_flushes_send_each_trace_once(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Several flush() calls at once, plus the background flusher: each trace sent once."""
    tracer = make_tracer(flush_at=7, max_batch_size=5, max_queue_size=1000)
    server.default = Reply(delay=0.01)
    items = traces(60)
    for i, item in enumerate(items):
        tracer.enqueue(item)
        if i % 20 == 0:
            await asyncio.sleep(0)
    await asyncio.gather(tracer.flush(), tracer.flush(), tracer.flush())
    ids = server.accepted_ids()
    assert len(ids) == len(set(ids)) == 60
    stats = tracer.stats()
    assert (stats.sent, stats.queue_size, stats.in_flight) == (60, 0, 0)


async def test_flush_counts_its_own_failed_batch_and_the_one_in_flight(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """When both the batch already in flight and the one flush() sent fail, ``requeued``
    counts both, and the message says how many went back to the queue."""
    tracer = make_tracer(flush_at=2, max_batch_size=2, max_retries=0, retry_backoff_max=5)
    server.default = Reply(503)
    error = await flush_behind_a_batch_in_flight(tracer, server)
    assert error.requeued == 3
    assert str(error) == "3 trace(s) could not be delivered and went back to the queue"
    assert tracer.stats().queue_size + tracer.stats().in_flight == 3


async def test_a_flush_waiting_when_shutdown_times_out_is_not_cancelled(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A flush() waiting for a batch that shutdown(timeout) cancels returns: the caller
    is not cancelled itself, and the batch is counted failed by the shutdown."""
    tracer = make_tracer(flush_at=100, timeout=30)
    server.default = Reply(delay=60)
    enqueue_all(tracer, traces(2))
    flushing = asyncio.create_task(tracer.flush())
    await server.wait_until(lambda: server.in_flight > 0)
    stats = await tracer.shutdown(timeout=0.2)
    assert (stats.failed, stats.in_flight) == (2, 0)
    await flushing  # neither raises CancelledError nor hangs
    assert not flushing.cancelled()


async def test_a_flush_waiting_for_an_earlier_batch_that_shutdown_cancels_returns(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """The same when the batch flush() waits for was sent before the call (by the
    flusher, at ``flush_at``): flush() returns once shutdown(timeout) cancels it."""
    tracer = make_tracer(flush_at=2, timeout=30)
    server.default = Reply(delay=60)
    enqueue_all(tracer, traces(2))  # flush_at: the flusher sends them
    await server.wait_until(lambda: server.in_flight > 0)
    flushing = asyncio.create_task(tracer.flush())
    await asyncio.sleep(0)  # one step: flush() has nothing to send and waits at once
    assert not flushing.done()  # waiting for the flusher's batch
    stats = await tracer.shutdown(timeout=0.2)
    assert (stats.failed, stats.in_flight) == (2, 0)
    await flushing  # neither raises CancelledError nor hangs
    assert not flushing.cancelled()


async def test_a_batch_failing_while_shutdown_drains_is_failed_not_requeued_for_flush(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """flush() waits for a batch; shutdown() begins; the batch then fails: its traces are
    failed (no later round will take them), so flush() reports nothing requeued and
    returns instead of raising DeliveryError."""
    tracer = make_tracer(max_retries=0)
    server.gate = asyncio.Event()
    server.default = Reply(503)
    enqueue_all(tracer, traces(2))
    flushing = asyncio.create_task(tracer.flush())
    await server.wait_until(lambda: server.in_flight > 0)
    stopping = asyncio.create_task(tracer.shutdown())
    await asyncio.sleep(0)  # one step: shutdown() has begun and waits for the batch
    assert not stopping.done()
    assert not flushing.done()
    server.gate.set()  # the 503 now, during the drain
    stats = await stopping
    await flushing  # no DeliveryError: nothing went back to the queue
    assert (stats.failed, stats.sent, stats.queue_size) == (2, 0, 0)


async def test_a_batch_cancelled_by_the_shutdown_timeout_is_reported_as_cancelled(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """shutdown(timeout) cancels a batch still in flight: its traces are failed and handed
    to on_error with the reason "cancelled before delivery", not as leftovers."""
    reported: list[tuple[Exception, list[str]]] = []
    tracer = make_tracer(
        timeout=30, on_error=lambda exc, ts: reported.append((exc, [t.id for t in ts]))
    )
    server.default = Reply(delay=60)
    enqueue_all(tracer, traces(2))
    flushing = asyncio.create_task(tracer.flush())
    await server.wait_until(lambda: server.in_flight > 0)
    assert tracer.stats().in_flight == 2
    stats = await tracer.shutdown(timeout=0.2)
    await flushing
    assert (stats.failed, stats.in_flight) == (2, 0)
    assert [(type(exc), str(exc), ids) for exc, ids in reported] == [
        (TracingError, "cancelled before delivery", ["t-0", "t-1"])
    ]


class _Escapes(BaseException):
    """Not an Exception: the SDK's ``except Exception`` around callbacks lets it through."""


class _Logged(logging.Handler):
    """Sets ``seen`` when the tracing logger writes a line holding ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.seen, self.lines = text, asyncio.Event(), list[str]()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.lines.append(record.getMessage())
            self.seen.set()


@pytest.mark.flusher_crashes
async def test_a_crashed_flusher_is_logged_and_restarted(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """An ``on_error`` that raises a BaseException kills the flusher task (the state this
    test is about); it is logged and restarted a second later, and delivers again."""
    calls: list[str] = []

    def on_error(exc: Exception, failed: object) -> None:
        calls.append(str(exc))
        raise _Escapes

    crashed = _Logged("tracing flusher crashed")
    logging.getLogger("tracing").addHandler(crashed)
    try:
        tracer = make_tracer(on_error=on_error, flush_at=1, max_retries=0)
        server.respond_with(400)  # answered, not retried: on_error runs in the flusher
        enqueue_all(tracer, traces(1, "rejected"))
        async with asyncio.timeout(20):
            await crashed.seen.wait()
    finally:
        logging.getLogger("tracing").removeHandler(crashed)
    assert crashed.lines == ["tracing flusher crashed; restarting it in 1 s"]
    assert len(calls) == 1
    enqueue_all(tracer, traces(2, "after"))  # flush_at=1: sent by the restarted flusher
    await server.wait_for_traces(2)
    assert sorted(server.accepted_ids()) == ["after-0", "after-1"]
