"""The README's "Delivery guarantees" and "Edge cases, decided", one test each, through the
public API against the scripted server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import aiohttp
import pytest

import tracing._log
from tests._helpers import FAST, enqueue_all, flush_behind_a_batch_in_flight, traces
from tests._server import FaultServer, Recorded, Reply, check_invariant
from tests.conftest import MakeTracer
from tracing import AsyncTracing, BatchError, DeliveryError, Trace, TracingError


def failing_once(trace_id: str, reply: Reply) -> Any:
    """A ``reply_for`` that answers ``reply`` to the first request carrying ``trace_id``."""
    seen: list[Recorded] = []

    def answer(record: Recorded) -> Reply | None:
        if trace_id in record.trace_ids and not seen:
            seen.append(record)
            return reply
        return None

    return answer


async def test_flush_raises_when_a_batch_in_flight_at_the_call_fails(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """flush() waits for a batch the flusher already sent; when that batch fails, flush()
    raises, and ``requeued`` counts that batch alone, not the one flush() sent itself."""
    tracer = make_tracer(flush_at=2, max_batch_size=2, max_retries=0, retry_backoff_max=5)
    server.reply_for = failing_once("a-0", Reply(503))
    error = await flush_behind_a_batch_in_flight(tracer, server)
    assert error.requeued == 2
    assert server.accepted_ids() == ["b-0"]
    stats = tracer.stats()
    assert (stats.sent, stats.queue_size + stats.in_flight) == (1, 2)
    check_invariant(stats)


async def test_flush_starts_no_batch_after_one_fails(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """After the first batch fails its retries flush() starts no other: ``requeued`` is
    that batch, the rest stay queued behind it, in order."""
    tracer = make_tracer(max_retries=0, flush_at=100, max_batch_size=2, max_concurrency=1)
    server.respond_with(500)
    enqueue_all(tracer, traces(6))
    with pytest.raises(DeliveryError) as info:
        await tracer.flush()
    assert info.value.requeued == 2
    assert [r.trace_ids for r in server.requests] == [["t-0", "t-1"]]
    assert tracer.stats().queue_size == 6
    await tracer.flush()
    assert server.accepted_ids() == [f"t-{i}" for i in range(6)]


async def test_max_queue_size_counts_traces_in_flight(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """While a batch is in flight its traces still take room: 3 in flight + 2 queued fill
    a queue of 5, and the next trace is dropped."""
    tracer = make_tracer(max_queue_size=5, flush_at=3, max_batch_size=3)
    server.gate = asyncio.Event()
    enqueue_all(tracer, traces(3, "first"))
    await server.wait_for_requests(1)
    assert tracer.stats().in_flight == 3
    enqueue_all(tracer, traces(2, "more"))
    assert tracer.enqueue(Trace("over", id="over")) is False
    stats = tracer.stats()
    assert (stats.in_flight, stats.queue_size, stats.dropped) == (3, 2, 1)
    check_invariant(stats)
    server.gate.set()
    await tracer.flush()
    assert sorted(server.accepted_ids()) == sorted(
        ["first-0", "first-1", "first-2", "more-0", "more-1"]
    )


async def test_traces_handed_over_during_shutdown_are_dropped_and_logged(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """Once shutdown() has begun, enqueue() refuses: False, counted dropped, logged at
    WARNING and passed to on_error; the drain still delivers what was queued before."""
    reported: list[tuple[Exception, list[str]]] = []
    tracer = make_tracer(on_error=lambda exc, ts: reported.append((exc, [t.id for t in ts])))
    server.gate = asyncio.Event()
    enqueue_all(tracer, traces(2))
    with caplog.at_level(logging.WARNING, logger="tracing"):
        stopping = asyncio.create_task(tracer.shutdown())
        await server.wait_for_requests(1)  # the drain has begun
        assert tracer.enqueue(Trace("late", id="late")) is False
        server.gate.set()
        stats = await stopping
    assert (stats.sent, stats.dropped, stats.enqueued) == (2, 1, 3)
    assert [ids for _, ids in reported] == [["late"]]
    assert isinstance(reported[0][0], TracingError)
    assert "shut down" in str(reported[0][0])
    drops = [r for r in caplog.records if "dropped 1 trace" in r.getMessage()]
    assert all("because the tracer is shut down" in r.getMessage() for r in drops)
    assert [r.levelno for r in drops] == [logging.WARNING]
    assert sorted(server.accepted_ids()) == ["t-0", "t-1"]


class _Clock:
    """Stands in for the ``time`` module inside ``tracing._log``: a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def test_queue_full_warning_repeats_every_few_seconds_and_not_more(
    make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drops are logged at once, then at most one line per 5 s that sums what came
    between; shutdown() logs the rest."""
    clock = _Clock()
    monkeypatch.setattr(tracing._log, "time", clock)
    tracer = make_tracer(max_queue_size=1, flush_at=1)
    server_down = Trace("held", id="held")
    assert tracer.enqueue(server_down)  # fills the queue (in flight or queued)
    with caplog.at_level(logging.WARNING, logger="tracing"):
        for second in (0.0, 1.0, 2.0, 4.9, 5.0, 6.0, 9.9, 10.1):
            clock.now = 1000.0 + second
            assert tracer.enqueue(Trace("dropped")) is False
        lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        # t=0: the first drop; t=5.0: the four since; t=10.1: the three since.
        assert lines == [
            "tracing dropped 1 trace(s): 1 because the queue is full",
            "tracing dropped 4 trace(s): 4 because the queue is full",
            "tracing dropped 3 trace(s): 3 because the queue is full",
        ]
        caplog.clear()
        clock.now += 1
        assert tracer.enqueue(Trace("dropped")) is False
        assert caplog.records == []
        await tracer.shutdown()
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert lines == ["tracing dropped 1 trace(s): 1 because the queue is full"]
    assert tracer.stats().dropped == 9


async def test_no_payload_in_any_delivery_or_drop_warning(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """Rejections, failures after retries, requeues and drops log ids and counts, never
    what a trace holds."""
    secret = "PAYLOAD-sk-123"

    def secret_trace(trace_id: str) -> Trace:
        return Trace("job", id=trace_id, input=secret, output=secret, metadata={"k": secret})

    tracer = make_tracer(max_queue_size=2, flush_at=2, max_batch_size=1, max_retries=0)
    server.reject = {"rejected": "bad trace"}
    server.reply_for = lambda r: Reply(400) if "refused" in r.trace_ids else None
    with caplog.at_level(logging.DEBUG, logger="tracing"):
        enqueue_all(tracer, [secret_trace("rejected"), secret_trace("refused")])
        await tracer.flush()  # per-trace rejection and a 400: failed, logged
        server.default = Reply(503)
        enqueue_all(tracer, [secret_trace("requeued")])
        with pytest.raises(DeliveryError):
            await tracer.flush()  # logged as requeued
        enqueue_all(tracer, [secret_trace("queued")])
        assert tracer.enqueue(secret_trace("dropped")) is False  # queue full
        await tracer.shutdown()  # the rest fail after retries
    text = "\n".join(r.getMessage() for r in caplog.records)
    for trace_id in ("rejected", "refused", "requeued", "queued"):
        assert trace_id in text
    assert "dropped 1 trace" in text
    assert secret not in text
    assert secret not in caplog.text


async def test_send_batch_after_shutdown_raises_and_start_reopens(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """send_batch() and send_batch_sequential() after shutdown() raise TracingError;
    start() opens the tracer again for both."""
    tracer = make_tracer()
    await tracer.shutdown()
    message = "^this AsyncTracing is shut down; call start\\(\\) to use it again$"
    with pytest.raises(TracingError, match=message):
        await tracer.send_batch(traces(1, "a"))
    with pytest.raises(TracingError, match=message):
        await tracer.send_batch_sequential(traces(1, "b"))
    assert server.requests == []
    await tracer.start()
    assert (await tracer.send_batch(traces(1, "c"))).successful == 1
    assert (await tracer.send_batch_sequential(traces(1, "d"))).successful == 1
    assert server.accepted_ids() == ["c-0", "d-0"]


async def test_retry_after_pauses_only_the_tracer_that_got_it(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A Retry-After holds the sends of the tracer it answered; another tracer sending to
    the same endpoint meanwhile is not held."""
    paused = make_tracer(retry_backoff_max=60)
    other = make_tracer()
    server.reply_for = failing_once("p-0", Reply(429, {"Retry-After": "60"}))
    held = asyncio.create_task(paused.send_batch(traces(1, "p")))
    await server.wait_for_requests(1)
    assert (await other.send_batch(traces(1, "o"))).successful == 1
    assert not held.done(), "the paused tracer must still be waiting out its Retry-After"
    held.cancel()  # the minute's wait itself is another test's business
    with contextlib.suppress(asyncio.CancelledError):
        await held
    assert [r.trace_ids for r in server.requests] == [["p-0"], ["o-0"]]


async def test_send_batch_masks_but_does_not_sample(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """send_batch*() send every trace they are given, sampled out or not, masked."""
    tracer = make_tracer(sample_rate=0.0, mask=lambda value: "***")
    assert tracer.enqueue(Trace("sampled out")) is False  # the queue samples
    result = await tracer.send_batch([Trace("a", id="a", input="secret")])
    sequential = await tracer.send_batch_sequential([Trace("b", id="b", output="secret")])
    assert (result.successful, sequential.successful) == (1, 1)
    first, second = server.requests
    assert first.traces[0]["input"] == "***"
    assert second.traces[0]["output"] == "***"
    assert server.accepted_ids() == ["a", "b"]


async def test_status_is_none_when_no_answer_came(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """ApiResponse.status is the HTTP status that decided a trace, None with no answer."""
    tracer = make_tracer(max_batch_size=1, max_retries=0)
    server.reply_for = lambda r: Reply(drop=True) if "t-0" in r.trace_ids else None
    result = await tracer.send_batch(traces(2))
    no_answer, answered = result.results
    assert (no_answer.id, no_answer.success, no_answer.status) == ("t-0", False, None)
    assert (answered.id, answered.success, answered.status) == ("t-1", True, 200)


async def test_disabled_send_batch_sequential_sends_nothing(server: FaultServer) -> None:
    """enabled=False: send_batch() and send_batch_sequential() make no request and return
    every trace as failed, with a message saying why."""
    tracer = AsyncTracing(endpoint=server.url, enabled=False)
    for send in (tracer.send_batch, tracer.send_batch_sequential):
        result = await send(traces(3))
        assert (result.total, result.successful, result.failed) == (3, 0, 3)
        message = "tracing is disabled (enabled=False); nothing was sent"
        assert [(r.id, r.success, r.status, r.message) for r in result.results] == [
            (f"t-{i}", False, None, message) for i in range(3)
        ]
        assert result.errors == [message] * 3
    assert server.requests == []


async def test_redirects_are_not_followed(server: FaultServer, make_tracer: MakeTracer) -> None:
    """A 3xx is an answer, not a place to go: one request, the traces failed with it."""
    reported: list[str] = []
    tracer = make_tracer(on_error=lambda exc, ts: reported.extend(t.id for t in ts))
    server.respond_with(307, {"Location": "/elsewhere/api/traces/batch"})
    enqueue_all(tracer, traces(2))
    await tracer.flush()
    assert [r.path for r in server.requests] == ["/api/traces/batch"]
    assert (tracer.stats().failed, tracer.stats().retries) == (2, 0)
    assert reported == ["t-0", "t-1"]
    result = await tracer.send_batch(traces(1, "direct"))  # a fresh 200 after it
    assert result.successful == 1


async def test_rate_limit_below_one_per_second(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """rate_limit=0.8 lets one request through at once, the next after about 1.25 s."""
    tracer = make_tracer(rate_limit=0.8, max_batch_size=1, max_concurrency=4)
    started = time.monotonic()  # before the first token: see test_rate_limit_spaces_requests
    # 1.25 s at 0.8/s; a bucket refilled per minute (aiolimiter's default) takes 75 s
    result = await asyncio.wait_for(tracer.send_batch(traces(2)), timeout=30)
    assert result.successful == 2
    assert len(server.requests) == 2
    assert max(r.time for r in server.requests) - started >= 1.2


async def test_a_flusher_that_cannot_start_is_logged_never_raised(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """If the background task cannot be made, enqueue() still queues the trace and logs
    an ERROR; the trace goes out once the tracer starts."""
    tracer = make_tracer()
    loop = asyncio.get_running_loop()

    def refuse(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        coro.close()
        raise RuntimeError("no new tasks")

    with caplog.at_level(logging.ERROR, logger="tracing"):
        loop.set_task_factory(refuse)
        try:
            assert tracer.enqueue(Trace("kept", id="kept")) is True
        finally:
            loop.set_task_factory(None)
    (record,) = [r for r in caplog.records if r.name == "tracing"]
    assert "could not start its background flusher" in record.getMessage()
    assert record.exc_info is not None
    await tracer.flush()
    assert server.accepted_ids() == ["kept"]


async def test_flush_at_wakes_a_waiting_flusher(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """With the flusher already waiting, the trace that reaches flush_at wakes it."""
    tracer = make_tracer(flush_at=3)
    await tracer.start()
    await asyncio.sleep(0)  # one loop turn: the new flusher task runs up to its wait
    enqueue_all(tracer, traces(2))
    enqueue_all(tracer, traces(1, "third"))
    await server.wait_for_traces(3)
    assert server.requests[0].trace_ids == ["t-0", "t-1", "third-0"]


async def test_a_busy_thread_hands_the_loop_one_wake_up_at_a_time(
    server: FaultServer, make_tracer: MakeTracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread that queues many traces past flush_at while the loop is busy schedules
    one wake-up on the loop, not one per trace; the flusher then sends them all."""
    tracer = make_tracer(flush_at=5, max_queue_size=1000, max_batch_size=1000)
    await tracer.start()
    await asyncio.sleep(0)  # the flusher waits
    loop = asyncio.get_running_loop()
    handed: list[object] = []
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
        handed.append(callback)
        return call_soon_threadsafe(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    producer = threading.Thread(target=enqueue_all, args=(tracer, traces(500)))
    producer.start()
    producer.join()  # blocks the loop on purpose: no wake-up can be handled meanwhile
    assert len(handed) == 1
    await server.wait_for_traces(500)  # sent with no flush(): the one wake-up did it
    await tracer.flush()  # settles the answer
    assert tracer.stats().sent == 500


async def test_batch_error_names_every_trace(server: FaultServer, make_tracer: MakeTracer) -> None:
    """When nothing is answered, BatchError's errors name each trace and the cause."""
    tracer = make_tracer(max_retries=0)
    server.default = Reply(503)
    with pytest.raises(BatchError) as info:
        await tracer.send_batch(traces(2))
    assert [e.split(":")[0] for e in info.value.errors] == ["t-0", "t-1"]
    assert all("503" in e for e in info.value.errors)


async def test_a_session_closed_under_the_tracer_fails_batches_never_raises(
    server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A user's session closed while the tracer still uses it: each batch is failed,
    logged with its traceback and reported; flush() and the host see no exception."""
    reported: list[str] = []
    session = aiohttp.ClientSession()
    tracer = AsyncTracing(
        endpoint=server.url,
        session=session,
        on_error=lambda exc, ts: reported.extend(t.id for t in ts),
        **FAST,
    )
    await session.close()
    enqueue_all(tracer, traces(2))
    with caplog.at_level(logging.WARNING, logger="tracing"):
        await tracer.flush()
        stats = await tracer.shutdown()
    assert (stats.sent, stats.failed, stats.queue_size) == (0, 2, 0)
    assert reported == ["t-0", "t-1"]
    (logged,) = [r for r in caplog.records if "failed to send a batch of 2" in r.getMessage()]
    assert logged.exc_info is not None
    assert server.requests == []
