"""``POST /v1/traces`` as an HTTP endpoint, on the real collector process: encodings,
gzip, partial success, 400/401/413/415, methods. The store plays no part in these, so
they run on SQLite only (``test_otlp_route`` runs what the store does on both)."""

from __future__ import annotations

import gzip

import aiohttp
import orjson
import pytest
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.collector.conftest import Collector, StartCollector, get_json
from tests.collector.otlp_pb import request, sdk_request
from tests.collector.test_otlp_json import EXAMPLE, to_otlp_json
from tests.collector.test_otlp_map import CHILD, ROOT, START, TRACE, expected, foreign, full_trace
from tests.collector.test_otlp_route import JSON, PROTOBUF, export, post, stored


@pytest.fixture
def store_kind() -> str:
    """SQLite only: nothing here depends on the store."""
    return "sqlite"


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
