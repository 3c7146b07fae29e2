"""Contract clauses (README: "How it works", "Options", "Delivery guarantees") that the rest
of the suite checks less than the page says,
each checked through the public API against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests._server import FaultServer, Reply, check_invariant
from tests.conftest import MakeTracer
from tracing import AsyncTracing, DeliveryError, Trace, current_span, current_trace

RFC3339_MICRO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.mark.parametrize("key", ["pk\nlive", "pk\rlive", "pk\x00live"])
def test_a_key_that_cannot_be_a_header_is_refused_at_construction(key: str) -> None:
    """A publishable key HTTP cannot carry is a bad value: ValueError naming the argument,
    at construction, not a failure at every send."""
    with pytest.raises(ValueError, match="publishable_key"):
        AsyncTracing(publishable_key=key)


def test_a_bad_key_in_the_environment_is_refused_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACING_PUBLISHABLE_KEY", "pk\x01live")
    with pytest.raises(ValueError, match="publishable_key"):
        AsyncTracing()


async def test_a_trace_queued_by_another_tracer_is_refused_and_counts_nothing(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """``enqueue()`` of a Trace another tracer queued returns False and counts nothing;
    the trace is sent once, by the first tracer."""
    first, second = make_tracer(), make_tracer()
    trace = Trace("shared")
    assert first.enqueue(trace) is True
    assert second.enqueue(trace) is False
    assert second.stats().enqueued == 0
    assert second.stats().dropped == 0
    await first.flush()
    await second.flush()
    assert server.accepted_ids() == [trace.id]


async def test_every_time_on_the_wire_has_microseconds_and_z(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """sentAt, and the trace's and its spans' times, are RFC 3339 UTC with 6 digits and Z."""
    tracer = make_tracer()
    async with tracer.trace("timed") as trace:
        with trace.span("child"):
            pass
    await tracer.flush()
    body = server.requests[0].body
    assert RFC3339_MICRO_Z.fullmatch(body["sentAt"])
    (sent,) = body["traces"]
    (span,) = sent["spans"]
    for value in (sent["startTime"], sent["endTime"], span["startTime"], span["endTime"]):
        assert RFC3339_MICRO_Z.fullmatch(value), value


async def test_retry_after_from_a_queued_batch_also_pauses_send_batch(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A Retry-After answer pauses every send to the endpoint: a ``send_batch`` started
    during the pause waits for it too."""
    tracer = make_tracer(retry_backoff_max=5.0, max_retries=1)
    server.respond_with(429, {"Retry-After": "1"})
    tracer.enqueue(Trace("queued"))
    flushing = asyncio.create_task(tracer.flush())
    await server.wait_for_requests(1)
    paused_at = server.requests[0].time
    async with asyncio.timeout(20):  # the client has read the 429 once it counts a retry
        while tracer.stats().retries < 1:  # noqa: ASYNC110 (no event for it)
            await asyncio.sleep(0.01)
    result = await tracer.send_batch([Trace("direct")])
    await flushing
    assert result.successful == 1
    direct = next(r for r in server.requests if r.trace_ids[0] != server.requests[0].trace_ids[0])
    assert direct.time - paused_at >= 0.9


async def test_flush_raises_delivery_error_with_requeued_and_cause(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """After the retries of a retryable failure, ``flush()`` raises DeliveryError with
    ``requeued`` the number sent back to the queue and ``__cause__`` the last failure; the
    traces are at the front of the queue, in order, and a later flush delivers them."""
    tracer = make_tracer(max_retries=1)
    server.respond_with(503, times=2)
    traces = [Trace(f"t{i}") for i in range(3)]
    for trace in traces:
        tracer.enqueue(trace)
    with pytest.raises(DeliveryError) as caught:
        await tracer.flush()
    assert caught.value.requeued == 3
    assert caught.value.__cause__ is not None
    assert tracer.stats().queue_size == 3
    await tracer.flush()
    assert server.accepted_ids() == [t.id for t in traces]
    check_invariant(tracer.stats())


async def test_mask_leaves_every_other_field_alone(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """mask replaces input, output and metadata values (keys kept), of the trace and its
    spans; name, description, summaries, tags, error and usage are sent as given."""
    tracer = make_tracer(mask=lambda value: "***")
    trace = tracer.trace(
        "name",
        input={"a": 1},
        description="desc",
        input_summary="in-sum",
        metadata={"k": "v", "n": 2},
        tags=["tag"],
    )
    with trace.span("span", input="si", metadata={"sk": "sv"}) as span:
        span.end(output="so", error="span-boom")
    await trace.end(output=[1], output_summary="out-sum", error="boom")
    await tracer.flush()
    (sent,) = server.requests[0].traces
    assert (sent["input"], sent["output"]) == ("***", "***")
    assert sent["metadata"] == {"k": "***", "n": "***"}
    assert (sent["name"], sent["description"]) == ("name", "desc")
    assert (sent["inputSummary"], sent["outputSummary"]) == ("in-sum", "out-sum")
    assert (sent["tags"], sent["error"]) == (["tag"], "boom")
    (sent_span,) = sent["spans"]
    assert (sent_span["input"], sent_span["output"]) == ("***", "***")
    assert sent_span["metadata"] == {"sk": "***"}
    assert (sent_span["name"], sent_span["error"]) == ("span", "span-boom")


async def test_mask_skips_none_input_and_output(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    seen: list[Any] = []

    def mask(value: Any) -> Any:
        seen.append(value)
        return value

    tracer = make_tracer(mask=mask)
    await tracer.trace("plain").end()
    await tracer.flush()
    assert seen == []
    assert server.accepted_ids()


async def test_a_sync_observed_call_outside_any_loop_is_delivered(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A decorated sync function called on a thread where no loop runs makes a trace,
    with the bound arguments (defaults applied) as input, that the next flush delivers."""
    tracer = make_tracer()
    results: list[int] = []

    @tracer.observe()
    def add(a: int, b: int = 2) -> int:
        assert current_trace() is not None
        return a + b

    thread = threading.Thread(target=lambda: results.append(add(1)))
    thread.start()
    thread.join()
    assert results == [3]
    await tracer.flush()
    (sent,) = server.requests[0].traces
    assert sent["name"].endswith("add")
    assert (sent["input"], sent["output"]) == ({"a": 1, "b": 2}, 3)


async def test_current_trace_and_span_follow_tasks_gather_and_taskgroups(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Inside ``async with tracer.trace()`` the trace (and the span of a ``with`` block) is
    current in awaited coroutines, created tasks, gather and TaskGroup children, and a span
    made there attaches to the current span."""
    tracer = make_tracer()
    seen: list[tuple[Any, Any]] = []

    async def child(name: str) -> None:
        trace = current_trace()
        assert trace is not None
        seen.append((trace, current_span()))
        with trace.span(name):
            await asyncio.sleep(0)

    async with tracer.trace("root") as root:
        with root.span("outer") as outer:
            await child("awaited")
            await asyncio.create_task(child("task"))
            await asyncio.gather(child("g1"), child("g2"))
            async with asyncio.TaskGroup() as group:
                group.create_task(child("tg"))
    assert current_trace() is None
    assert seen == [(root, outer)] * 5
    await tracer.flush()
    (sent,) = server.requests[0].traces
    by_name = {s["name"]: s for s in sent["spans"]}
    assert by_name["outer"]["parentId"] is None
    for name in ("awaited", "task", "g1", "g2", "tg"):
        assert by_name[name]["parentId"] == by_name["outer"]["id"]


async def test_enqueue_from_threads_while_the_loop_runs(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    tracer = make_tracer(flush_at=5)
    await tracer.start()
    threads = [threading.Thread(target=lambda: tracer.enqueue(Trace("th"))) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    await server.wait_for_traces(10)
    await tracer.flush()
    assert tracer.stats().sent == 10


async def test_drop_warning_is_rate_limited_with_a_count(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """Many drops in a burst log one WARNING on ``tracing`` with the count, not one each."""
    tracer = make_tracer(max_queue_size=2, flush_at=2)
    caplog.set_level(logging.WARNING, logger="tracing")
    kept = [tracer.enqueue(Trace(f"t{i}")) for i in range(50)]
    assert kept[:2] == [True, True]
    assert not any(kept[2:])
    await tracer.shutdown(timeout=10)
    drops = [r for r in caplog.records if r.name == "tracing" and "dropped" in r.getMessage()]
    assert 1 <= len(drops) <= 2
    counts = [re.search(r"\d+", r.getMessage()) for r in drops]
    assert sum(int(m.group()) for m in counts if m is not None) == 48
    assert tracer.stats().dropped == 48


@pytest.mark.parametrize("endpoint_suffix", ["/", "/prefix/", "/prefix"])
async def test_otlp_endpoint_slash_and_prefix(
    server: FaultServer, make_tracer: MakeTracer, endpoint_suffix: str
) -> None:
    tracer = make_tracer(protocol="otlp", endpoint=server.url + endpoint_suffix)
    await tracer.send_batch([Trace("t")])
    assert server.requests[0].path == endpoint_suffix.rstrip("/") + "/v1/traces"


async def test_retry_after_http_date_in_the_past_retries_at_once(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    tracer = make_tracer(max_retries=1)
    server.respond_with(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    result = await tracer.send_batch([Trace("t")])
    assert result.successful == 1
    assert len(server.requests) == 2


async def test_unparseable_retry_after_falls_back_to_backoff(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    tracer = make_tracer(max_retries=1)
    server.script(Reply(503, {"Retry-After": "soon"}))
    result = await tracer.send_batch([Trace("t")])
    assert result.successful == 1
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("argument", "value"),
    [("metadata", [("a", 1), 2]), ("metadata", "text"), ("tags", "prod"), ("tags", [1, 2])],
)
def test_bad_trace_arguments_are_value_errors_naming_them(argument: str, value: Any) -> None:
    """``tracer.trace()`` refuses a metadata that is not a mapping and tags that are not
    strings (a single str would become one tag per character) with a ValueError naming the
    argument, not a TypeError from inside."""
    tracer = AsyncTracing(enabled=False)
    with pytest.raises(ValueError, match=argument):
        tracer.trace("t", **{argument: value})


def test_bad_span_metadata_is_a_value_error_naming_it() -> None:
    trace = AsyncTracing(enabled=False).trace("t")
    with pytest.raises(ValueError, match="metadata"):
        trace.span("s", metadata=[1, 2])  # type: ignore[arg-type]


async def test_trace_arguments_reach_the_wire(server: FaultServer, make_tracer: MakeTracer) -> None:
    tracer = make_tracer()
    source = {"k": "v"}
    trace = tracer.trace("t", metadata=source, tags=(t for t in ("a", "b")))
    source["k"] = "changed"  # the trace keeps a copy
    await trace.end()
    await tracer.flush()
    (sent,) = server.requests[0].traces
    assert (sent["metadata"], sent["tags"]) == ({"k": "v"}, ["a", "b"])


async def test_max_queue_size_counts_traces_in_flight(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """max_queue_size bounds queued and in-flight traces together: while a full batch is
    in flight, the next trace is dropped."""
    server.gate = asyncio.Event()
    tracer = make_tracer(max_queue_size=3, flush_at=3)
    for i in range(3):
        assert tracer.enqueue(Trace(f"t{i}"))
    await server.wait_for_requests(1)
    assert tracer.stats().in_flight == 3
    assert tracer.enqueue(Trace("over")) is False
    assert tracer.stats().dropped == 1
    server.gate.set()
    await tracer.flush()
    assert tracer.stats().sent == 3
    check_invariant(tracer.stats())


async def test_a_far_retry_after_date_is_capped_by_retry_backoff_max(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """An HTTP-date Retry-After a year ahead waits retry_backoff_max, not a year."""
    tracer = make_tracer(max_retries=1, retry_backoff_max=0.05)
    server.respond_with(503, {"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"})
    async with asyncio.timeout(20):
        result = await tracer.send_batch([Trace("t")])
    assert result.successful == 1
    assert len(server.requests) == 2


def test_a_trace_built_directly_is_checked_like_the_tracer_checks_it() -> None:
    """``Trace(...)`` built directly refuses an end before its start (no receiver accepts
    it) and tags that are one string; its tags become a list."""
    start = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="end_time"):
        Trace("t", start_time=start, end_time=start - timedelta(microseconds=1))
    with pytest.raises(ValueError, match="tags"):
        Trace("t", tags="prod")
    trace = Trace("t", start_time=start, end_time=start, tags=("a", "b"))
    assert trace.tags == ["a", "b"]
    assert trace.duration == 0.0
