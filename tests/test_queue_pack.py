"""A deep backlog is held as JSON (``_queue.PACK_DEPTH``): the cyclic GC no longer walks
it, and nothing about what is delivered or reported changes."""

from __future__ import annotations

import gc
from collections.abc import Sequence

from tests._server import FaultServer
from tracing import AsyncTracing, LlmUsage, Trace
from tracing._queue import PACK_DEPTH

DEEP = PACK_DEPTH + 300


def _make(tracer: AsyncTracing, i: int) -> Trace:
    trace = tracer.trace(f"job-{i}", input={"i": i, "k": [1, 2]}, metadata={"n": i}, tags=["a"])
    with trace.span("step", input=i) as span:
        span.end(output={"double": 2 * i}, llm_usage=LlmUsage("m", "p", prompt_tokens=i))
    return trace


async def test_deep_backlog_is_untracked_and_delivered_field_for_field(
    server: FaultServer,
) -> None:
    tracer = AsyncTracing(endpoint=server.url, flush_at=DEEP, flush_interval=0, max_queue_size=DEEP)
    try:
        ids = []
        for i in range(DEEP):  # no await: nothing is sent while the backlog grows
            trace = _make(tracer, i)
            tracer.enqueue(trace)
            ids.append(trace.id)
        last = trace  # a packed one: the last enqueued
        gc.collect()
        items = list(tracer._queue._items)
        assert len(items) == DEEP
        assert all(type(item) is Trace for item in items[:PACK_DEPTH])
        packed = items[PACK_DEPTH:]
        assert all(type(item) is tuple and not gc.is_tracked(item) for item in packed)
        del items, packed
        await tracer.flush()
        await server.wait_for_traces(DEEP)
        sent = {t["id"]: t for r in server.batch_requests() for t in r.traces}
        assert sorted(sent) == sorted(ids)
        body = sent[last.id]
        assert body["name"] == last.name
        assert body["input"] == last.input
        assert body["metadata"] == last.metadata
        assert body["tags"] == ["a"]
        assert body["spans"][0]["output"] == last.spans[0].output
        usage = last.spans[0].llm_usage
        assert usage is not None
        assert body["spans"][0]["llmUsage"]["promptTokens"] == usage.prompt_tokens
        stats = tracer.stats()
        assert (stats.sent, stats.queue_size, stats.in_flight) == (DEEP, 0, 0)
    finally:
        await tracer.shutdown(timeout=5)


async def test_on_error_gets_packed_traces_rebuilt_in_full(server: FaultServer) -> None:
    failed: list[Trace] = []

    def on_error(exc: Exception, traces: Sequence[Trace]) -> None:
        failed.extend(traces)

    tracer = AsyncTracing(
        endpoint=server.url,
        flush_at=DEEP,
        flush_interval=0,
        max_queue_size=DEEP,
        on_error=on_error,
    )
    try:
        made = [_make(tracer, i) for i in range(DEEP)]
        for trace in made:
            tracer.enqueue(trace)
        server.reject = {trace.id: "refused" for trace in made[-3:]}  # packed ones
        await tracer.flush()
        assert [t.id for t in failed] == [t.id for t in made[-3:]]
        for original, reported in zip(made[-3:], failed, strict=True):
            assert reported.name == original.name
            assert reported.input == original.input
            assert reported.metadata == original.metadata
            assert reported.tags == ["a"]
            assert reported.start_time == original.start_time
            assert reported.end_time == original.end_time
            assert [s.output for s in reported.spans] == [s.output for s in original.spans]
            assert reported.spans[0].llm_usage == original.spans[0].llm_usage
        assert tracer.stats().failed == 3
    finally:
        await tracer.shutdown(timeout=5)


async def test_otlp_queue_never_packs(server: FaultServer) -> None:
    tracer = AsyncTracing(
        endpoint=server.url,
        protocol="otlp",
        flush_at=DEEP,
        flush_interval=0,
        max_queue_size=DEEP,
    )
    try:
        for i in range(DEEP):
            tracer.enqueue(_make(tracer, i))
        assert all(type(item) is Trace for item in tracer._queue._items)
    finally:
        tracer._queue._items.clear()
        await tracer.shutdown(timeout=5)
