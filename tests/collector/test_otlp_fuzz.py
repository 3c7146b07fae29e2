"""Hypothesis against ``POST /v1/traces`` on the real collector process: random bytes,
mutations of a real request, and OTLP-shaped JSON with values of any type.

Asserted for every example: the answer is 200 (an ``ExportTraceServiceResponse`` in the
request's encoding, rejecting at most the spans sent) or 400; and, at the end, nothing
unexpected in the collector's log. Derandomized, so a run is reproducible.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from tests.collector.conftest import Collector
from tests.collector.otlp_pb import sdk_request
from tests.collector.test_otlp_map import full_trace

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SETTINGS = settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
REAL = sdk_request([full_trace(), full_trace()]).SerializeToString()


@pytest.fixture
def store_kind() -> str:
    """SQLite only: the decoders are what is under attack here."""
    return "sqlite"


def post(url: str, body: bytes, content_type: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        f"{url}/v1/traces", data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


def check(url: str, body: bytes, content_type: str, spans: int | None = None) -> None:
    status, answer_type, answer = post(url, body, content_type)
    assert status in (200, 400), (status, answer[:200])
    assert answer_type == content_type
    if status != 200:
        return
    if content_type == PROTOBUF:
        response = ExportTraceServiceResponse()
        response.ParseFromString(answer)
        rejected = response.partial_success.rejected_spans
    else:
        rejected = int(orjson.loads(answer).get("partialSuccess", {}).get("rejectedSpans", 0))
    if spans is not None:
        assert 0 <= rejected <= spans


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real request with a few bytes changed, inserted, deleted, or cut off."""
    body = bytearray(REAL)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body) - 1))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if kind == "flip":
            body[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del body[at : at + draw(st.integers(1, 8))]
        else:
            del body[at:]
        if not body:
            break
    return bytes(body)


ANY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
HEXISH = st.text("0123456789abcdefABCDEF", max_size=34) | ANY
VALUES = st.fixed_dictionaries(
    {},
    optional={
        "stringValue": ANY,
        "intValue": st.integers() | st.text(max_size=25),
        "doubleValue": ANY,
        "boolValue": ANY,
        "arrayValue": st.fixed_dictionaries({"values": st.lists(ANY, max_size=3)}),
        "kvlistValue": ANY,
    },
)
ATTRIBUTES = st.lists(st.fixed_dictionaries({"key": st.text(max_size=20), "value": VALUES}))
SPAN = st.fixed_dictionaries(
    {"traceId": HEXISH, "spanId": HEXISH, "name": st.text(max_size=10) | ANY},
    optional={
        "parentSpanId": HEXISH,
        "startTimeUnixNano": st.integers() | st.text(max_size=22),
        "endTimeUnixNano": st.integers(0, 2**64) | ANY,
        "kind": ANY,
        "attributes": ATTRIBUTES | ANY,
        "status": st.fixed_dictionaries({}, optional={"code": ANY, "message": ANY}) | ANY,
        "events": st.lists(st.fixed_dictionaries({"name": ANY, "attributes": ATTRIBUTES})),
    },
)


@st.composite
def json_requests(draw: st.DrawFn) -> tuple[bytes, int]:
    spans = draw(st.lists(SPAN | ANY, max_size=5))
    body = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}
    # The standard library's encoder: it writes integers of any size (orjson refuses).
    return json.dumps(body).encode(), len(spans)


async def test_random_bytes_and_mutated_requests(collector: Collector) -> None:
    """Any bytes, and any few-byte change to a real request: 200 or 400, never worse."""

    @SETTINGS
    @given(body=st.binary(max_size=300) | mutated())
    def run(body: bytes) -> None:
        check(collector.url, body, PROTOBUF)

    await asyncio.to_thread(run)
    assert "unexpected error" not in collector.output
    assert "Traceback" not in collector.output


async def test_otlp_shaped_json_with_values_of_any_type(collector: Collector) -> None:
    """Spans with fields of any type: 200 rejecting at most the spans sent, or 400."""

    @SETTINGS
    @given(request=json_requests())
    def run(request: tuple[bytes, int]) -> None:
        body, spans = request
        check(collector.url, body, JSON, spans)

    await asyncio.to_thread(run)
    assert "unexpected error" not in collector.output
    assert "Traceback" not in collector.output
