"""``POST /v1/traces`` on the real collector process: protobuf and JSON bodies, answers in
the request's encoding, partial success, keys, limits, and spans across requests."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests._postgres import PostgresServer, find_bindir
from tests.collector.conftest import (
    Collector,
    collectors,
    fresh_database,
    get_json,
)
from tests.collector.otlp_pb import key_values, request, sdk_request
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

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


async def post(
    http: aiohttp.ClientSession,
    collector: Collector,
    body: bytes,
    content_type: str = PROTOBUF,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    """POST a body to /v1/traces: (status, Content-Type of the answer, answer bytes)."""
    sent = {"Content-Type": content_type, **(headers or {})}
    async with http.post(f"{collector.url}/v1/traces", data=body, headers=sent) as response:
        return response.status, response.content_type, await response.read()


async def export(
    http: aiohttp.ClientSession, collector: Collector, message: ExportTraceServiceRequest
) -> ExportTraceServiceResponse:
    """Send as protobuf; expect a 200 protobuf ExportTraceServiceResponse."""
    status, content_type, answer = await post(http, collector, message.SerializeToString())
    assert (status, content_type) == (200, PROTOBUF), answer
    response = ExportTraceServiceResponse()
    response.ParseFromString(answer)
    return response


async def stored(http: aiohttp.ClientSession, collector: Collector, trace_id: str) -> Any:
    status, document = await get_json(http, f"{collector.url}/api/traces/{trace_id}")
    assert status == 200, document
    return document


async def test_an_sdk_encoded_trace_reads_back_as_sent(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Protobuf built by the SDK's fixed mapping: GET /api/traces/{id} is the trace sent."""
    traces = [full_trace(), full_trace("0af7651916cd43dd8448eb211c80319c")]
    answer = await export(http, collector, sdk_request(traces))
    assert not answer.HasField("partial_success")
    for trace in traces:
        assert await stored(http, collector, trace.id) == expected(trace)
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert page["total"] == 2
    assert {item["spanCount"] for item in page["traces"]} == {3}
    assert {item["totalTokens"] for item in page["traces"]} == {42}


async def test_children_before_their_root_across_requests(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Children in one request, the root in a later one: one trace, named by the root."""
    child = foreign(CHILD, ROOT, "chat", start=START + 10**8)
    grandchild = foreign(GRANDCHILD, CHILD, "db", start=START + 2 * 10**8)
    await export(http, collector, request([grandchild, child]))
    early = await stored(http, collector, TRACE.hex())
    assert early["name"] == "chat"
    assert len(early["spans"]) == 2

    root = foreign(
        ROOT,
        name="GET /items",
        status=Status(code=Status.STATUS_CODE_ERROR, message="500"),
        attributes={"http.route": "/items", "input.value": "q"},
    )
    await export(http, collector, request([root]))
    document = await stored(http, collector, TRACE.hex())
    assert document["name"] == "GET /items"
    assert (document["status"], document["error"], document["input"]) == ("error", "500", "q")
    assert document["metadata"]["http.route"] == "/items"
    assert document["startTime"] == "2025-11-24T16:00:00.000000Z"
    db, chat = document["spans"]
    assert (db["id"], db["parentId"]) == (GRANDCHILD.hex(), CHILD.hex())
    # The root's arrival made the child stored before it a top-level span.
    assert (chat["id"], chat["parentId"]) == (CHILD.hex(), None)
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert page["total"] == 1
    assert page["traces"][0]["spanCount"] == 2


async def test_the_same_span_id_is_stored_once(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """A re-sent request, and a span repeated inside one: each span id stored once."""
    message = request([foreign(ROOT), foreign(CHILD, ROOT), foreign(CHILD, ROOT)])
    for _ in range(3):
        answer = await export(http, collector, message)
        assert not answer.HasField("partial_success")
    late = foreign(GRANDCHILD, CHILD, "late")
    await export(http, collector, request([late, foreign(CHILD, ROOT, "changed")]))
    document = await stored(http, collector, TRACE.hex())
    assert [(s["id"], s["name"]) for s in document["spans"]] == [
        (CHILD.hex(), "op"),
        (GRANDCHILD.hex(), "late"),
    ]
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert page["traces"][0]["spanCount"] == 2


async def test_attributes_of_every_type_survive(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    values = {
        "s": "ünïcode ✓",
        "i": -(2**63),
        "d": 1.5,
        "b": True,
        "a": ["x", 1, None],
        "kv": {"k": {"n": [1]}},
        "bytes": b"\x00\xff",
    }
    await export(http, collector, request([foreign(ROOT, attributes=values)]))
    metadata = (await stored(http, collector, TRACE.hex()))["metadata"]
    assert metadata == {**values, "bytes": "AP8=", "service.name": "svc"}
    assert key_values({}) == []


async def test_a_database_outage_is_503_then_delivery_resumes(
    http: aiohttp.ClientSession,
) -> None:
    """PostgreSQL stopped: 503 with Retry-After as a protobuf Status; started again: 200."""
    bindir = find_bindir()
    assert bindir is not None, "PostgreSQL is missing: run `make pytest`"
    server = PostgresServer(bindir)
    try:
        await asyncio.to_thread(server.start)
        async with collectors(await fresh_database(server)) as start:
            collector = await start()
            await export(http, collector, request([foreign(ROOT)]))
            await asyncio.to_thread(server.stop)
            body = request([foreign(CHILD, ROOT)]).SerializeToString()
            sent = {"Content-Type": PROTOBUF}
            async with http.post(f"{collector.url}/v1/traces", data=body, headers=sent) as r:
                assert (r.status, r.content_type) == (503, PROTOBUF)
                assert r.headers["Retry-After"] == "1"
                assert RpcStatus.FromString(await r.read()).code == 14
            await asyncio.to_thread(server.start)
            await export(http, collector, request([foreign(CHILD, ROOT)]))
            document = await stored(http, collector, TRACE.hex())
            assert [s["id"] for s in document["spans"]] == [CHILD.hex()]
            assert "Traceback" not in collector.output
            await collector.wait_for_line(r"ERROR tracing\.collector: cannot store 1 OTLP trace")
    finally:
        await asyncio.to_thread(server.destroy)
