"""``POST /v1/traces`` on the real collector process: protobuf and JSON bodies, answers in
the request's encoding, partial success, keys, limits, and spans across requests."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import aiohttp
import orjson
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests._postgres import PostgresServer, find_bindir
from tests.collector.conftest import (
    Collector,
    StartCollector,
    collectors,
    fresh_database,
    get_json,
)
from tests.collector.otlp_pb import key_values, request, sdk_request
from tests.collector.test_otlp_json import EXAMPLE, to_otlp_json
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


async def test_a_json_body_is_answered_in_json(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """The same request as OTLP/JSON: a JSON ExportTraceServiceResponse, same trace stored."""
    trace = full_trace()
    body = orjson.dumps(to_otlp_json(sdk_request([trace])))
    status, content_type, answer = await post(http, collector, body, JSON)
    assert (status, content_type) == (200, JSON)
    assert orjson.loads(answer) == {}
    assert await stored(http, collector, trace.id) == expected(trace)


async def test_the_specification_example_json_is_accepted(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """examples/trace.json (uppercase ids, a parent not sent): stored under lowercase hex."""
    status, _, answer = await post(http, collector, EXAMPLE.read_bytes(), JSON)
    assert status == 200, answer
    document = await stored(http, collector, "5b8efff798038103d269b633813fc60c")
    (span,) = document["spans"]
    assert span["id"] == "eee19b7ec3c1b174"
    assert span["parentId"] == "eee19b7ec3c1b173"
    assert span["name"] == "I'm a server span"
    assert span["metadata"] == {"my.span.attr": "some value", "otel.span.kind": "server"}
    assert (span["startTime"], span["endTime"]) == (
        "2018-12-13T14:51:00.000000Z",
        "2018-12-13T14:51:01.000000Z",
    )
    assert document["name"] == "I'm a server span"  # no root yet: its earliest span


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
    # The root was not there when the child came: it keeps the root's hex span id.
    assert (chat["id"], chat["parentId"]) == (CHILD.hex(), ROOT.hex())
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


async def test_gzip_bodies_in_both_encodings(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    trace = full_trace()
    gz = {"Content-Encoding": "gzip"}
    body = gzip.compress(sdk_request([trace]).SerializeToString())
    status, content_type, _ = await post(http, collector, body, PROTOBUF, gz)
    assert (status, content_type) == (200, PROTOBUF)
    other = full_trace()
    body = gzip.compress(orjson.dumps(to_otlp_json(sdk_request([other]))))
    status, content_type, _ = await post(http, collector, body, JSON, gz)
    assert (status, content_type) == (200, JSON)
    assert await stored(http, collector, trace.id) == expected(trace)
    assert await stored(http, collector, other.id) == expected(other)


def bad_and_good() -> ExportTraceServiceRequest:
    bad = Span(trace_id=b"\x00" * 16, span_id=ROOT, name="zero trace id", start_time_unix_nano=1)
    backwards = foreign(CHILD, ROOT, start=START, end=START - 1)
    return request([bad, foreign(ROOT, name="good"), backwards])


async def test_invalid_spans_are_a_partial_success(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Rejected spans are counted with their reasons; the valid ones are stored."""
    answer = await export(http, collector, bad_and_good())
    assert answer.partial_success.rejected_spans == 2
    assert "traceId must be 16 bytes" in answer.partial_success.error_message
    assert "endTimeUnixNano is before" in answer.partial_success.error_message
    assert (await stored(http, collector, TRACE.hex()))["name"] == "good"

    body = orjson.dumps(to_otlp_json(bad_and_good()))
    status, content_type, raw = await post(http, collector, body, JSON)
    assert (status, content_type) == (200, JSON)
    partial = orjson.loads(raw)["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "traceId" in partial["errorMessage"]
    await collector.wait_for_line(r"WARNING tracing\.collector: POST /v1/traces rejected 2 span")


async def test_undecodable_bodies_are_400_in_their_encoding(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    status, content_type, raw = await post(http, collector, b"\x0a\x05abc")
    assert (status, content_type) == (400, PROTOBUF)
    rpc = RpcStatus.FromString(raw)
    assert rpc.code == 3
    assert "not a valid OTLP protobuf" in rpc.message
    for body in (b"{not json", b"[]", b'{"resourceSpans": 5}', b"[" * 100_000):
        status, content_type, raw = await post(http, collector, body, JSON)
        assert (status, content_type) == (400, JSON), body[:20]
        assert orjson.loads(raw)["code"] == 3
    status, _, _ = await post(http, collector, b"not gzip", PROTOBUF, {"Content-Encoding": "gzip"})
    assert status == 400
    assert "Traceback" not in collector.output


async def test_another_content_type_is_415(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    for content_type in ("text/plain", "application/grpc", "application/x-www-form-urlencoded"):
        status, answer_type, raw = await post(http, collector, b"x", content_type)
        assert (status, answer_type) == (415, JSON)
        assert "application/x-protobuf" in orjson.loads(raw)["message"]
    status, _, _ = await post(http, collector, b"{}", "application/json; charset=utf-8")
    assert status == 200


async def test_keys_guard_the_route(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    """With keys: 401 (in the request's encoding) without the Bearer key, 200 with it."""
    collector = await start_collector("--key", "k1")
    body = request([foreign(ROOT)]).SerializeToString()
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, content_type, raw = await post(http, collector, body, PROTOBUF, headers)
        assert (status, content_type) == (401, PROTOBUF)
        assert RpcStatus.FromString(raw).code == 16
    status, content_type, raw = await post(http, collector, b"{}", JSON)
    assert (status, content_type) == (401, JSON)
    assert "key" in orjson.loads(raw)["message"]
    status, _, _ = await post(http, collector, body, PROTOBUF, {"Authorization": "Bearer k1"})
    assert status == 200
    _, document = await get_json(
        http, f"{collector.url}/api/traces/{TRACE.hex()}", {"Authorization": "Bearer k1"}
    )
    assert document["id"] == TRACE.hex()


async def test_the_body_limit_holds(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    """Over --max-body (as sent, or after gunzip): 413 in the request's encoding."""
    collector = await start_collector("--max-body", "20000")
    big = request([foreign(ROOT, attributes={"pad": "x" * 30_000})]).SerializeToString()
    status, content_type, raw = await post(http, collector, big)
    assert (status, content_type) == (413, PROTOBUF)
    assert "limit" in RpcStatus.FromString(raw).message
    bomb = gzip.compress(big * 10, 9)
    assert len(bomb) < 20_000
    status, _, _ = await post(http, collector, bomb, PROTOBUF, {"Content-Encoding": "gzip"})
    assert status == 413


async def test_other_methods_and_query_strings(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{collector.url}/v1/traces") as response:
        assert response.status == 405
        assert (await response.json())["message"]
    status, _, _ = await post(http, collector, b"")
    assert status == 200
    async with http.post(
        f"{collector.url}/v1/traces?x=1", data=b"", headers={"Content-Type": PROTOBUF}
    ) as response:
        assert response.status == 400


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
            # (asyncpg's pool logs its own reconnection attempts, traceback included.)
            assert "unexpected error" not in collector.output
            await collector.wait_for_line(r"ERROR tracing\.collector: cannot store 1 OTLP trace")
    finally:
        await asyncio.to_thread(server.destroy)
