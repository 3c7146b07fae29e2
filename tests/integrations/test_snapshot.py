"""``observe()`` keeps its snapshots as JSON until something reads them (issue 12).

Whatever path a trace takes (the JSON protocol, its stdlib fallback, OTLP, the spool,
``mask``, the user reading the field), the captured values must be the ones the call saw,
and a field once read is a plain, stored value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from tests._otlp import attributes, spans_of
from tests._server import FaultServer
from tests.conftest import MakeTracer
from tracing import AsyncTracing, Span, current_trace
from tracing._capture import MAX_CAPTURE_BYTES
from tracing._models import _get_input, _get_output

ITEM = {"id": 7, "name": "ünïcødé ☃", "tags": ["a", "b"], "price": 9.5, "none": None}


def sent_traces(server: FaultServer) -> list[dict[str, Any]]:
    return [trace for request in server.batch_requests() for trace in request.traces]


def observed(tracer: AsyncTracing) -> Any:
    @tracer.observe("lookup")
    async def lookup(item: dict[str, Any], currency: str = "EUR") -> dict[str, Any]:
        item["seen"] = True  # changed after the snapshot: must not be recorded
        return {"item": dict(item), "currency": currency}

    return lookup


async def test_unread_snapshots_stay_json_and_arrive_whole(
    make_tracer: MakeTracer, server: FaultServer
) -> None:
    """Not read before sending, input and output are held as JSON and sent as they were."""
    tracer = make_tracer(flush_at=100)
    lookup = observed(tracer)
    spans: list[Span] = []
    async with tracer.trace("request") as trace:
        await lookup(dict(ITEM))
        spans.extend(trace.spans)
    (span,) = spans
    assert isinstance(_get_input(span), orjson.Fragment)
    assert isinstance(_get_output(span), orjson.Fragment)
    await tracer.flush()
    (sent,) = sent_traces(server)
    assert sent["spans"][0]["input"] == {"item": ITEM, "currency": "EUR"}
    assert sent["spans"][0]["output"] == {"item": {**ITEM, "seen": True}, "currency": "EUR"}


async def test_a_read_snapshot_is_a_stored_value(
    make_tracer: MakeTracer, server: FaultServer
) -> None:
    """Reading the field decodes it once and keeps the result: a change to it is sent."""
    tracer = make_tracer(flush_at=100)
    lookup = observed(tracer)
    async with tracer.trace("request") as trace:
        await lookup(dict(ITEM))
        (span,) = trace.spans
        assert span.input == {"item": ITEM, "currency": "EUR"}
        assert span.input is span.input
        assert type(_get_input(span)) is dict
        span.output["note"] = "added by the handler"
    await tracer.flush()
    (sent,) = sent_traces(server)
    assert sent["spans"][0]["output"]["note"] == "added by the handler"


async def test_arguments_together_over_the_cap_are_capped_one_by_one(
    make_tracer: MakeTracer, server: FaultServer
) -> None:
    """Two arguments each under 16 KiB but over it together: both arrive whole, as the
    per-argument cap says (the whole-dict snapshot is only a shortcut)."""
    tracer = make_tracer(flush_at=100)
    half = "x" * (MAX_CAPTURE_BYTES * 2 // 3)

    @tracer.observe("two")
    def two(a: str, b: list[str]) -> int:
        return 1

    two(half, [half])
    await tracer.flush()
    (sent,) = sent_traces(server)
    assert sent["input"] == {"a": half, "b": [half]}


async def test_a_trace_only_the_stdlib_encodes_keeps_its_snapshots(
    make_tracer: MakeTracer, server: FaultServer
) -> None:
    """An integer over 64 bits elsewhere sends the trace through the stdlib encoder,
    which must write the held JSON as the values it stands for."""
    tracer = make_tracer(flush_at=100)
    lookup = observed(tracer)
    async with tracer.trace("request", metadata={"big": 2**70}):
        await lookup(dict(ITEM))
    await tracer.flush()
    (sent,) = sent_traces(server)
    assert sent["metadata"] == {"big": 2**70}
    assert sent["spans"][0]["input"] == {"item": ITEM, "currency": "EUR"}
    assert sent["spans"][0]["output"]["item"]["seen"] is True


async def test_mask_sees_decoded_values(make_tracer: MakeTracer, server: FaultServer) -> None:
    """``mask`` gets the captured dicts, not their JSON, and its result is what is sent."""
    seen: list[Any] = []

    def mask(value: Any) -> Any:
        seen.append(value)
        return {"masked": sorted(value)} if isinstance(value, dict) else value

    tracer = make_tracer(flush_at=100, mask=mask)
    lookup = observed(tracer)
    async with tracer.trace("request"):
        await lookup(dict(ITEM))
    await tracer.flush()
    (sent,) = sent_traces(server)
    assert {"item": ITEM, "currency": "EUR"} in seen
    assert sent["spans"][0]["input"] == {"masked": ["currency", "item"]}
    assert sent["spans"][0]["output"] == {"masked": ["currency", "item"]}


async def test_otlp_writes_the_snapshot_values(
    make_tracer: MakeTracer, server: FaultServer
) -> None:
    """The OTLP encoder reads the fields: it sees the values, written as JSON text."""
    tracer = make_tracer(flush_at=100, protocol="otlp")

    @tracer.observe("top")
    def top(item: dict[str, Any]) -> list[int]:
        return [1, 2]

    top(dict(ITEM))
    await tracer.flush()
    (request,) = server.requests
    (root,) = spans_of(request.otlp)
    values = attributes(root)
    assert json.loads(values["input.value"]) == {"item": ITEM}
    assert json.loads(values["output.value"]) == [1, 2]


async def test_the_spool_keeps_the_snapshots(
    make_tracer: MakeTracer, server: FaultServer, tmp_path: Path
) -> None:
    """Spooled, the trace's JSON carries the held values (the spool encodes on the loop)."""
    tracer = make_tracer(flush_at=100, spool_dir=tmp_path / "spool")

    @tracer.observe("top")
    async def top(item: dict[str, Any]) -> dict[str, Any]:
        assert current_trace() is not None
        return {"ok": item["id"]}

    await top(dict(ITEM))
    await tracer.flush()
    (sent,) = sent_traces(server)
    assert sent["input"] == {"item": ITEM}
    assert sent["output"] == {"ok": 7}
