"""Parent links of OTLP spans split over requests, on both stores (real collector
processes): a span linked to its trace's root reads back top-level (``parentId`` null)
whichever of them arrived first, and deeper links name their parent's id, also for this
SDK's spans, stored under other ids than their hex OTLP ones."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import Any

import aiohttp
import asyncpg
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from tests.collector.conftest import Collector, StartCollector, get_json
from tests.collector.otlp_pb import request, sdk_spans, trace_id_of
from tests.collector.test_otlp_map import (
    CHILD,
    GRANDCHILD,
    ROOT,
    START,
    TRACE,
    expected,
    foreign,
    full_trace,
)
from tests.collector.test_otlp_otel_sdk import Counting, protobuf
from tests.collector.test_otlp_route import export, stored
from tracing import Trace
from tracing._otlp import OtlpProtocol

OTHER = bytes.fromhex("2222222222222222")


def _links(document: dict[str, object]) -> dict[str, object]:
    spans = document["spans"]
    assert isinstance(spans, list)
    return {span["id"]: span["parentId"] for span in spans}


async def _one_trace(http: aiohttp.ClientSession, collector: Collector) -> None:
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert page["total"] == 1
    assert [t["id"] for t in page["traces"]] == [TRACE.hex()]


async def test_children_first_then_root_in_separate_requests(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    child = foreign(CHILD, ROOT, "chat", start=START + 10**8)
    grandchild = foreign(GRANDCHILD, CHILD, "db", start=START + 2 * 10**8)
    await export(http, collector, request([grandchild]))
    await export(http, collector, request([child]))
    early = await stored(http, collector, TRACE.hex())
    assert _links(early) == {GRANDCHILD.hex(): CHILD.hex(), CHILD.hex(): ROOT.hex()}

    await export(http, collector, request([foreign(ROOT, name="GET /items")]))
    document = await stored(http, collector, TRACE.hex())
    assert document["name"] == "GET /items"
    assert _links(document) == {GRANDCHILD.hex(): CHILD.hex(), CHILD.hex(): None}
    await _one_trace(http, collector)


async def test_root_first_then_children_in_separate_requests(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    await export(http, collector, request([foreign(ROOT, name="GET /items")]))
    await export(http, collector, request([foreign(CHILD, ROOT, "chat", start=START + 10**8)]))
    later = [
        foreign(GRANDCHILD, CHILD, "db", start=START + 2 * 10**8),
        foreign(OTHER, ROOT, "cache", start=START + 3 * 10**8),
    ]
    await export(http, collector, request(later))
    document = await stored(http, collector, TRACE.hex())
    assert document["name"] == "GET /items"
    assert _links(document) == {
        CHILD.hex(): None,
        GRANDCHILD.hex(): CHILD.hex(),
        OTHER.hex(): None,
    }
    await _one_trace(http, collector)


async def test_a_resent_root_changes_nothing(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """The root again (a retry) after its children: the links stay as they are."""
    await export(http, collector, request([foreign(CHILD, ROOT, "chat", start=START + 10**8)]))
    for _ in range(2):
        await export(http, collector, request([foreign(ROOT, name="GET /items")]))
    document = await stored(http, collector, TRACE.hex())
    assert _links(document) == {CHILD.hex(): None}
    await _one_trace(http, collector)


async def test_an_sdk_trace_with_a_non_hex_id_split_over_requests_is_one_trace(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Our SDK's mapping, re-batched: the spans (under the SHA-256 trace id) before the
    root (which names the original id): one trace under the original id, as sent."""
    trace = full_trace("run-42")
    root, *spans = sdk_spans(trace)
    await export(http, collector, request(spans, scope="tracing"))
    await export(http, collector, request([root], scope="tracing"))
    assert await stored(http, collector, "run-42") == expected(trace)
    status, _ = await get_json(http, f"{collector.url}/api/traces/{trace_id_of('run-42').hex()}")
    assert status == 404
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert [(t["id"], t["spanCount"]) for t in page["traces"]] == [("run-42", len(spans))]
    assert page["total"] == 1


async def test_an_sdk_trace_with_a_non_hex_id_root_first(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """The root first, its spans later: they join the trace under the original id."""
    trace = full_trace("run-43")
    root, *spans = sdk_spans(trace)
    await export(http, collector, request([root], scope="tracing"))
    await export(http, collector, request(spans, scope="tracing"))
    assert await stored(http, collector, "run-43") == expected(trace)
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert [(t["id"], t["spanCount"]) for t in page["traces"]] == [("run-43", len(spans))]
    assert page["total"] == 1


def sdk_sent(trace_id: str | None) -> tuple[Trace, list[Span]]:
    """A nested trace (plan -> llm, tool) and the spans this SDK's own encoder sends for
    it, as a re-batching OpenTelemetry Collector forwards them: one by one."""
    trace = full_trace(trace_id)
    trace.metadata.pop("nested")  # comes back as its JSON text (test_otlp_sdk_e2e)
    encoded = OtlpProtocol("svc").encode_batch([trace])
    assert encoded is not None
    message = ExportTraceServiceRequest.FromString(encoded[0])
    return trace, list(message.resource_spans[0].scope_spans[0].spans)


def by_id(document: dict[str, Any]) -> dict[str, Any]:
    spans = sorted(document["spans"], key=lambda span: span["id"])
    return {**document, "spans": spans}


# Requests, by span: 0 the root, 1 plan, 2 llm and 3 tool (both under plan).
ORDERS = {
    "children first": [[3], [2], [1], [0]],
    "parents first": [[0], [1], [2], [3]],
    "root last, parent after its children": [[2], [3], [1], [0]],
    "root between": [[3], [0], [1], [2]],
    "parent alone, then the root with the rest": [[1], [0, 2, 3]],
}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("trace_id", [None, "run-44"])
async def test_sdk_spans_one_per_request_link_to_their_parents(
    collector: Collector, http: aiohttp.ClientSession, order: str, trace_id: str | None
) -> None:
    """The spans of an SDK trace in requests of their own, in any order: the spans under
    ``plan`` name plan's id (``tracing.span.id``, not its hex OTLP id) as ``parentId``,
    with a hex trace id and with a non-hex one (whose spans wait under the hex id until
    the root comes): GET returns the trace as sent."""
    trace, spans = sdk_sent(trace_id)
    assert len(spans) == 4
    for indexes in ORDERS[order]:
        await export(http, collector, request([spans[i] for i in indexes], scope="tracing"))
    document = await stored(http, collector, trace.id)
    assert by_id(document) == by_id(expected(trace))
    plan = trace.spans[0]
    assert _links(document) == {
        plan.id: None,
        trace.spans[1].id: plan.id,
        trace.spans[2].id: plan.id,
    }
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert [(t["id"], t["spanCount"]) for t in page["traces"]] == [(trace.id, 3)]


def _nested_app(exporter: Counting) -> dict[str, str]:
    """root -> agent -> (chat, tool), traced by the OpenTelemetry SDK span by span: each
    span is posted as it ends, so chat and tool come before agent, agent before root."""
    provider = TracerProvider(resource=Resource.create({"service.name": "agents"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("agents.app")
    with (
        tracer.start_as_current_span("POST /run") as root,
        tracer.start_as_current_span("agent") as agent,
    ):
        with tracer.start_as_current_span("chat") as chat:
            chat.set_attribute("gen_ai.request.model", "gpt-4o")
        with tracer.start_as_current_span("tool") as tool:
            tool.set_attribute("tool.name", "search")
    provider.shutdown()
    return {
        name: format(span.get_span_context().span_id, "016x")
        for name, span in (("root", root), ("agent", agent), ("chat", chat), ("tool", tool))
    } | {"trace": format(root.get_span_context().trace_id, "032x")}


async def test_the_opentelemetry_sdk_sends_children_before_their_parents(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """The real exporter, one request per span, grandchildren first: chat and tool link
    to agent (stored after them), agent becomes top-level when the root comes."""
    exporter = Counting(protobuf(collector.url, {}))
    ids = await asyncio.to_thread(_nested_app, exporter)
    assert exporter.results == [SpanExportResult.SUCCESS] * 4
    document = await stored(http, collector, ids["trace"])
    assert document["name"] == "POST /run"
    assert _links(document) == {
        ids["chat"]: ids["agent"],
        ids["tool"]: ids["agent"],
        ids["agent"]: None,
    }
    names = {span["id"]: span["name"] for span in document["spans"]}
    assert names == {ids["chat"]: "chat", ids["tool"]: "tool", ids["agent"]: "agent"}
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert [(t["id"], t["spanCount"]) for t in page["traces"]] == [(ids["trace"], 3)]


async def _downgrade(db_url: str) -> None:
    """Turn the database back into the schema before the OTLP link columns (SQLite 2,
    PostgreSQL 1), as a collector from before them left it."""
    drop = [
        "DROP INDEX spans_by_otlp_id",
        "DROP INDEX spans_by_otlp_parent",
        "ALTER TABLE spans DROP COLUMN otlp_id",
        "ALTER TABLE spans DROP COLUMN otlp_parent",
        "DROP INDEX traces_by_otlp_trace",
        "ALTER TABLE traces DROP COLUMN root_span",
        "ALTER TABLE traces DROP COLUMN otlp_trace",
    ]
    if db_url.startswith("postgresql://"):
        conn = await asyncpg.connect(db_url)
        try:
            for statement in [*drop, "DELETE FROM schema_version WHERE version > 1"]:
                await conn.execute(statement)
        finally:
            await conn.close()
        return
    with contextlib.closing(sqlite3.connect(db_url)) as conn:
        for statement in [*drop, "DELETE FROM schema_version WHERE version > 2"]:
            conn.execute(statement)
        conn.commit()


async def test_a_database_from_before_is_migrated_and_its_spans_relinked(
    start_collector: StartCollector, db_url: str, http: aiohttp.ClientSession
) -> None:
    """A child stored by a collector of the previous schema, the root sent to this one:
    the schema is migrated at start and the child becomes top-level."""
    first = await start_collector()
    await export(http, first, request([foreign(CHILD, ROOT, "chat", start=START + 10**8)]))
    assert await first.stop() == 0
    await _downgrade(db_url)
    second = await start_collector()
    await export(http, second, request([foreign(ROOT, name="GET /items")]))
    document = await stored(http, second, TRACE.hex())
    assert (document["name"], _links(document)) == ("GET /items", {CHILD.hex(): None})
    await _one_trace(http, second)
