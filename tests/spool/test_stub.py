"""With a spool and the JSON protocol, the queue holds each trace's bytes, not the trace.

Once a trace's record is framed, the queue keeps only its id, its JSON and its record's
place (``_spool_stub``): the user's ``Trace`` is freed, what is posted is the same, and
a trace handed back to ``on_error`` is rebuilt in full from its JSON.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from tests._otlp import attributes, decode_request, spans_of
from tests._server import FaultServer, Reply
from tests.spool.conftest import MakeSpooled, wait_stats
from tracing import LlmUsage, Trace

COUNT = 300  # past ENCODE_AT twice: the loop's encoding and the writer's both swap


def fields(trace: Trace) -> tuple[Any, ...]:
    spans = [(s.name, s.input, s.output, s.start_time, s.end_time) for s in trace.spans]
    return (
        *(trace.name, trace.status, trace.input, trace.output, trace.metadata, trace.tags),
        *(trace.llm_usage, trace.start_time, trace.end_time, spans),
    )


async def queue_all(
    make_spooled: MakeSpooled, **options: Any
) -> tuple[Any, list[Any], dict[str, tuple[Any, ...]]]:
    """A tracer that sends nothing until flushed, holding ``COUNT`` traces in memory, a
    weak reference to each trace given to it, and each one's fields by id."""
    tracer = make_spooled(flush_at=10 * COUNT, flush_interval=60, **options)
    await tracer.start()
    refs, expected = [], {}
    for i in range(COUNT):  # trace() + end(), fields of every kind, each its own values
        trace = tracer.trace(
            "stub", id=f"{i:032x}", input={"q": f"q{i}"}, metadata={"n": i}, tags=["a", f"t{i}"]
        )
        trace.span("step", input=f"s{i}").end(output=i)
        usage = LlmUsage("m", "p", prompt_tokens=i, completion_tokens=1)
        await trace.end(output=f"a{i}", llm_usage=usage)
        assert trace._queued
        refs.append(weakref.ref(trace))
        expected[trace.id] = fields(trace)
        del trace
    await wait_stats(tracer, lambda s: s.queue_size == COUNT and s.spooled == 0)
    return tracer, refs, expected


async def all_freed(refs: list[Any]) -> None:
    """Until no trace given to the tracer is alive (each is freed once its record is
    framed; the writer's group comes within ~20 ms)."""
    async with asyncio.timeout(30):
        while True:
            gc.collect()
            if all(ref() is None for ref in refs):
                return
            await asyncio.sleep(0.005)


async def test_queued_traces_are_freed_and_their_bytes_are_posted(
    server: FaultServer, make_spooled: MakeSpooled
) -> None:
    tracer, refs, _ = await queue_all(make_spooled)
    await all_freed(refs)  # the queue keeps no trace alive...
    assert tracer.stats().queue_size == COUNT  # ...while they are all still queued
    assert not server.batch_requests()
    await tracer.flush()
    stats = await tracer.shutdown()
    assert (stats.sent, stats.failed) == (COUNT, 0)
    sent = {t["id"]: t for request in server.batch_requests() for t in request.traces}
    assert len(sent) == COUNT
    last = sent[f"{COUNT - 1:032x}"]
    assert last["input"] == {"q": f"q{COUNT - 1}"}
    assert last["output"] == f"a{COUNT - 1}"
    assert last["spans"][0]["input"] == f"s{COUNT - 1}"
    assert last["llmUsage"]["promptTokens"] == COUNT - 1


async def test_on_error_gets_rejected_traces_rebuilt_in_full(
    server: FaultServer, make_spooled: MakeSpooled
) -> None:
    server.default = Reply(400)
    reported: list[Trace] = []
    tracer, refs, expected = await queue_all(
        make_spooled, on_error=lambda exc, ts: reported.extend(ts)
    )
    await all_freed(refs)  # what on_error gets is rebuilt
    stats = await tracer.shutdown()
    assert (stats.failed, stats.sent) == (COUNT, 0)
    assert len(reported) == COUNT
    for trace in reported:
        assert type(trace) is Trace
        assert fields(trace) == expected[trace.id]
        assert repr(trace).startswith("Trace(")


async def test_otlp_keeps_the_traces_it_encodes_from(
    server: FaultServer, make_spooled: MakeSpooled
) -> None:
    """OTLP encodes from the fields: with it the queue holds the traces themselves."""
    tracer, refs, _ = await queue_all(make_spooled, protocol="otlp")
    alive = [ref() for ref in refs]
    assert None not in alive
    del alive
    await tracer.flush()
    stats = await tracer.shutdown()
    assert stats.sent == COUNT
    otlp = [request for request in server.requests if request.path == "/v1/traces"]
    spans = [span for request in otlp for span in spans_of(decode_request(request.raw))]
    roots = {span.trace_id.hex(): span for span in spans if span.name == "stub"}
    assert len(roots) == COUNT
    assert attributes(roots[f"{COUNT - 1:032x}"])["output.value"] == f"a{COUNT - 1}"


async def test_on_error_gets_a_replayed_trace_rebuilt_in_full(
    server: FaultServer, make_spooled: MakeSpooled
) -> None:
    """A trace another tracer left on disk, which the collector then rejects: on_error
    gets it with the fields it was written with, not only its id."""
    server.default = Reply(503)
    first = make_spooled()
    trace = first.trace("left", input={"q": "why"}, tags=["x"])
    trace.span("step").end(output=1)
    await trace.end(output="because")
    left = fields(trace)
    stats = await first.shutdown(timeout=5)
    assert stats.spooled == 1  # on disk, for the next start
    server.default = Reply(400)
    reported: list[Trace] = []
    second = make_spooled(on_error=lambda exc, ts: reported.extend(ts))
    await second.start()
    stats = await wait_stats(second, lambda s: s.failed == 1)
    assert stats.replayed == 1
    (back,) = reported
    assert type(back) is Trace
    assert (back.id, fields(back)) == (trace.id, left)
