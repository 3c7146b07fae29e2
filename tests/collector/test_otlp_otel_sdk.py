"""The real OpenTelemetry SDK sending into the real collector: its OTLP/HTTP protobuf
exporter (plain and gzip, batched, and span by span so children arrive before their
root) and its OTLP/HTTP JSON exporter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from opentelemetry.exporter.otlp.json.http.trace_exporter import (
    OTLPSpanExporter as JsonSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.collector.conftest import Collector, StartCollector, get_json

Exporter = Callable[[str, dict[str, str]], SpanExporter]


@pytest.fixture
def store_kind() -> str:
    """SQLite only: what the store does with spans across requests runs on both stores in
    ``test_otlp_route``."""
    return "sqlite"


class Counting(SpanExporter):
    """Wraps an exporter and keeps the result of every export call."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.results: list[SpanExportResult] = []

    def export(self, spans: Any) -> SpanExportResult:
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def run_app(exporter: Counting, *, batched: bool) -> dict[str, str]:
    """A request with an LLM call and a failing tool, traced by the OpenTelemetry SDK.

    Returns the hex ids of the trace and of its three spans.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    processor = BatchSpanProcessor(exporter) if batched else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("shop.app", "1.2.3")
    with tracer.start_as_current_span(
        "GET /items/{item_id}",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/items/{item_id}", "http.request.method": "GET"},
    ) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 7,
                "gen_ai.response.finish_reasons": ["stop"],
            },
        ) as llm:
            llm.add_event("first token", {"ms": 120})
        with tracer.start_as_current_span("tool.lookup") as tool:
            tool.record_exception(LookupError("no such item"))
            tool.set_status(Status(StatusCode.ERROR))
        root.set_status(Status(StatusCode.ERROR, "tool failed"))
        root.set_attribute("http.response.status_code", 500)
    assert provider.force_flush(30_000)
    provider.shutdown()
    return {
        "trace": format(root.get_span_context().trace_id, "032x"),
        "root": format(root.get_span_context().span_id, "016x"),
        "llm": format(llm.get_span_context().span_id, "016x"),
        "tool": format(tool.get_span_context().span_id, "016x"),
    }


def protobuf(url: str, headers: dict[str, str]) -> SpanExporter:
    return OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers, timeout=30)


def protobuf_gzip(url: str, headers: dict[str, str]) -> SpanExporter:
    return OTLPSpanExporter(
        endpoint=f"{url}/v1/traces", headers=headers, timeout=30, compression=Compression.Gzip
    )


def json(url: str, headers: dict[str, str]) -> SpanExporter:
    return JsonSpanExporter(endpoint=f"{url}/v1/traces", headers=headers, timeout=30)


async def check_trace(
    http: aiohttp.ClientSession, collector: Collector, ids: dict[str, str], **headers: str
) -> None:
    status, document = await get_json(
        http, f"{collector.url}/api/traces/{ids['trace']}", headers or None
    )
    assert status == 200, document
    assert document["name"] == "GET /items/{item_id}"
    assert (document["status"], document["error"]) == ("error", "tool failed")
    assert document["metadata"] == {
        "http.route": "/items/{item_id}",
        "http.request.method": "GET",
        "http.response.status_code": 500,
        "otel.span.kind": "server",
        "service.name": "shop",
    }
    spans = {span["name"]: span for span in document["spans"]}
    assert set(spans) == {"chat gpt-4o", "tool.lookup"}
    llm, tool = spans["chat gpt-4o"], spans["tool.lookup"]
    assert (llm["id"], tool["id"]) == (ids["llm"], ids["tool"])
    assert llm["llmUsage"] == {
        "model": "gpt-4o",
        "provider": "openai",
        "promptTokens": 12,
        "completionTokens": 7,
        "apiCallsCount": 1,
    }
    assert llm["metadata"]["gen_ai.response.finish_reasons"] == ["stop"]
    assert llm["metadata"]["otel.events"][0]["name"] == "first token"
    assert llm["metadata"]["otel.events"][0]["attributes"] == {"ms": 120}
    assert (tool["status"], tool["error"]) == ("error", "no such item")
    assert tool["metadata"]["otel.events"][0]["attributes"]["exception.type"] == "LookupError"
    for span in (llm, tool):
        assert document["startTime"] <= span["startTime"] <= span["endTime"]
        assert span["endTime"] <= document["endTime"]


@pytest.mark.parametrize("make", [protobuf, protobuf_gzip, json])
async def test_the_opentelemetry_sdk_exports_a_trace(
    collector: Collector, http: aiohttp.ClientSession, make: Exporter
) -> None:
    """Batched export (one request): the root is the trace, children top-level spans."""
    exporter = Counting(make(collector.url, {}))
    ids = await asyncio.to_thread(run_app, exporter, batched=True)
    assert exporter.results == [SpanExportResult.SUCCESS]
    await check_trace(http, collector, ids)
    document = (await get_json(http, f"{collector.url}/api/traces/{ids['trace']}"))[1]
    assert {span["parentId"] for span in document["spans"]} == {None}


async def test_span_by_span_children_arrive_before_their_root(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """SimpleSpanProcessor posts each span as it ends: three requests, the root last."""
    exporter = Counting(protobuf(collector.url, {}))
    ids = await asyncio.to_thread(run_app, exporter, batched=False)
    assert exporter.results == [SpanExportResult.SUCCESS] * 3
    await check_trace(http, collector, ids)
    document = (await get_json(http, f"{collector.url}/api/traces/{ids['trace']}"))[1]
    # Stored before the root arrived, they became top-level spans when it came.
    assert {span["parentId"] for span in document["spans"]} == {None}
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert page["total"] == 1
    assert page["traces"][0]["spanCount"] == 2
    assert page["traces"][0]["totalTokens"] == 19


async def test_the_exporter_with_a_key(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    """With --key, the exporter's Authorization header lets it in; without, it fails."""
    collector = await start_collector("--key", "secret-key")
    refused = Counting(protobuf(collector.url, {}))
    await asyncio.to_thread(run_app, refused, batched=True)
    assert refused.results == [SpanExportResult.FAILURE]
    exporter = Counting(protobuf(collector.url, {"Authorization": "Bearer secret-key"}))
    ids = await asyncio.to_thread(run_app, exporter, batched=True)
    assert exporter.results == [SpanExportResult.SUCCESS]
    await check_trace(http, collector, ids, Authorization="Bearer secret-key")
