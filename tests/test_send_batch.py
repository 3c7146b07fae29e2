"""``send_batch()`` and ``send_batch_sequential()``: direct sends that bypass the queue."""

from __future__ import annotations

import asyncio

import pytest

from tests._helpers import traces
from tests._server import FaultServer, Recorded, Reply
from tests.conftest import MakeTracer
from tracing import AsyncTracing, BatchError, BatchResult, Trace, TracingError


async def test_results_in_input_order_and_split(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """25 traces at max_batch_size=10 go as 10+10+5; results follow input order."""
    tracer = make_tracer(max_batch_size=10, max_concurrency=3)

    def slow_first(record: Recorded) -> Reply | None:
        # The first chunk answers last, so completion order differs from input order.
        return Reply(delay=0.2) if "t-0" in record.trace_ids else None

    server.reply_for = slow_first
    items = traces(25)
    result = await tracer.send_batch(items)
    assert isinstance(result, BatchResult)
    assert [r.id for r in result.results] == [t.id for t in items]
    assert (result.total, result.successful, result.failed, result.errors) == (25, 25, 0, [])
    assert all(r.success and r.status == 200 for r in result.results)
    assert sorted(len(r.trace_ids) for r in server.requests) == [5, 10, 10]
    assert sorted(server.accepted_ids()) == sorted(t.id for t in items)


async def test_bypasses_queue_counters(server: FaultServer, make_tracer: MakeTracer) -> None:
    """send_batch leaves stats() untouched."""
    tracer = make_tracer()
    await tracer.send_batch(traces(3))
    stats = tracer.stats()
    assert (stats.enqueued, stats.sent, stats.batches) == (0, 0, 0)
    assert len(server.accepted_ids()) == 3


async def test_empty_input(server: FaultServer, make_tracer: MakeTracer) -> None:
    """No traces: an empty result and no request."""
    result = await make_tracer().send_batch([])
    assert (result.total, result.results) == (0, [])
    assert server.requests == []


async def test_rejections_are_results_not_errors(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Per-trace success false is a failed result with its message, not an exception."""
    tracer = make_tracer()
    server.reject = {"t-1": "bad name", "t-3": "bad time"}
    result = await tracer.send_batch(traces(4))
    assert (result.total, result.successful, result.failed) == (4, 2, 2)
    assert [r.success for r in result.results] == [True, False, True, False]
    assert result.results[1].message == "bad name"
    assert len(result.errors) == 2
    assert "t-1" in result.errors[0]
    assert "bad name" in result.errors[0]


async def test_4xx_is_an_answer_not_a_batch_error(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A 400 for every request is a result with failed traces; no BatchError."""
    tracer = make_tracer()
    server.default = Reply(400)
    result = await tracer.send_batch(traces(3))
    assert (result.successful, result.failed) == (0, 3)
    assert all(r.status == 400 for r in result.results)
    assert len(server.requests) == 1


async def test_batch_error_when_nothing_delivered(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """When no request gets an answer after retries, BatchError carries total/failed/errors."""
    tracer = make_tracer(max_batch_size=2, max_retries=2)
    server.default = Reply(503)
    with pytest.raises(BatchError) as info:
        await tracer.send_batch(traces(3))
    error = info.value
    assert isinstance(error, TracingError)
    assert (error.total, error.failed, len(error.errors)) == (3, 3, 3)
    assert error.__cause__ is not None
    assert str(error) == f"none of 3 trace(s) could be delivered: {error.__cause__}"
    assert "HTTP 503" in str(error.__cause__)
    assert len(server.requests) == 2 * 3  # two requests, three attempts each


async def test_batch_error_on_transport_failure(make_tracer: MakeTracer) -> None:
    """Nothing listening: BatchError."""
    tracer = make_tracer(endpoint="http://127.0.0.1:9", max_retries=0)
    with pytest.raises(BatchError):
        await tracer.send_batch(traces(2))


async def test_partial_delivery_is_a_result(server: FaultServer, make_tracer: MakeTracer) -> None:
    """If some requests are answered, unanswered traces are failed results, not BatchError."""
    tracer = make_tracer(max_batch_size=2, max_retries=1)
    server.reply_for = lambda r: Reply(503) if "t-0" in r.trace_ids else None
    result = await tracer.send_batch(traces(4))
    assert [r.success for r in result.results] == [False, False, True, True]
    assert result.results[0].status == 503
    assert (result.successful, result.failed) == (2, 2)


async def test_same_retries_as_the_queue(server: FaultServer, make_tracer: MakeTracer) -> None:
    """send_batch retries retryable statuses with one Idempotency-Key per request."""
    tracer = make_tracer(max_retries=2)
    server.respond_with(500)
    server.respond_with(429)
    result = await tracer.send_batch(traces(2))
    assert result.successful == 2
    assert len(server.requests) == 3
    assert len({r.headers["Idempotency-Key"] for r in server.requests}) == 1


async def test_413_splits_in_send_batch(server: FaultServer, make_tracer: MakeTracer) -> None:
    """413 splits the request; an oversize single trace is a failed result."""
    tracer = make_tracer()
    server.max_body = 1500
    items = [*traces(4), Trace("big", id="big", input="x" * 3000)]
    result = await tracer.send_batch(items)
    assert [r.success for r in result.results] == [True] * 4 + [False]
    assert result.results[4].status == 413


async def test_concurrency_bound(server: FaultServer, make_tracer: MakeTracer) -> None:
    """Concurrent requests never exceed max_concurrency, and reach it."""
    tracer = make_tracer(max_batch_size=1, max_concurrency=2)
    server.gate = asyncio.Event()
    sending = asyncio.create_task(tracer.send_batch(traces(6)))
    await server.wait_until(lambda: server.in_flight >= 2)
    with pytest.raises(TimeoutError):
        await server.wait_until(lambda: server.in_flight > 2, timeout=0.2)
    server.gate.set()
    result = await sending
    assert result.successful == 6
    assert server.max_in_flight == 2


async def test_sequential_is_one_at_a_time_in_order(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """send_batch_sequential never has two requests in flight and keeps chunk order."""
    tracer = make_tracer(max_batch_size=2, max_concurrency=8)
    server.default = Reply(delay=0.02)
    items = traces(9)
    result = await tracer.send_batch_sequential(items)
    assert server.max_in_flight == 1
    assert [r.trace_ids for r in server.requests] == [
        [t.id for t in items[i : i + 2]] for i in range(0, 9, 2)
    ]
    assert [r.id for r in result.results] == [t.id for t in items]
    assert result.successful == 9


async def test_sequential_batch_error(server: FaultServer, make_tracer: MakeTracer) -> None:
    """send_batch_sequential raises BatchError when nothing is delivered."""
    tracer = make_tracer(max_retries=0)
    server.default = Reply(drop=True)
    with pytest.raises(BatchError) as info:
        await tracer.send_batch_sequential(traces(2))
    assert info.value.total == 2


async def test_unended_traces_are_ended(server: FaultServer, make_tracer: MakeTracer) -> None:
    """A trace never ended gets an end time before it is sent."""
    trace = make_tracer().trace("open")
    result = await trace._tracer.send_batch([trace])  # type: ignore[union-attr]
    assert result.successful == 1
    assert server.requests[0].traces[0]["endTime"] is not None


async def test_disabled_sends_nothing(server: FaultServer) -> None:
    """enabled=False: send_batch makes no request and reports nothing delivered."""
    tracer = AsyncTracing(endpoint=server.url, enabled=False)
    result = await tracer.send_batch(traces(2))
    assert (result.total, result.successful) == (2, 0)
    assert server.requests == []


async def test_non_trace_argument_raises(make_tracer: MakeTracer) -> None:
    """Passing something other than Trace objects raises ValueError."""
    with pytest.raises(ValueError, match="traces"):
        await make_tracer().send_batch(["not a trace"])  # type: ignore[list-item]


async def test_results_follow_what_the_answer_lists(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Each trace gets the answer's status and its own result; a trace the answer does
    not list, or lists without a message, is accepted with message "ok"."""
    tracer = make_tracer()
    body = (
        b'{"results": [{"id": "t-0", "success": true, "message": ""},'
        b' {"id": "t-1", "success": false, "message": "nope"}]}'
    )
    server.script(Reply(202, body=body))
    result = await tracer.send_batch(traces(3))
    assert [(r.id, r.success, r.status, r.message) for r in result.results] == [
        ("t-0", True, 202, "ok"),
        ("t-1", False, 202, "nope"),
        ("t-2", True, 202, "ok"),
    ]
    assert (result.successful, result.failed, result.errors) == (2, 1, ["t-1: nope"])


async def test_the_queue_counts_what_the_answer_lists(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Through the queue, the same answer counts two sent and one failed."""
    reported: list[str] = []
    tracer = make_tracer(on_error=lambda exc, ts: reported.extend(t.id for t in ts))
    body = b'{"results": [{"id": "t-1", "success": false, "message": "nope"}, {"id": "x"}]}'
    server.script(Reply(200, body=body))
    for trace in traces(3):
        assert tracer.enqueue(trace)
    await tracer.flush()
    stats = tracer.stats()
    assert (stats.sent, stats.failed) == (2, 1)
    assert reported == ["t-1"]


async def test_send_batch_and_flush_start_a_new_tracer(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A tracer whose first use is send_batch(), or flush(), is running after it, as
    after enqueue()."""
    tracer = make_tracer()
    assert "state=new" in repr(tracer)
    assert (await tracer.send_batch(traces(1))).successful == 1
    assert "state=running" in repr(tracer)
    flushed = make_tracer()
    await flushed.flush()
    assert "state=running" in repr(flushed)
