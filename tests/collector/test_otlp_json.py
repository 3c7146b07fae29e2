"""The OTLP/JSON decoder (``_otlp_json``): the specification's example, agreement with the
protobuf decoder, and the JSON mapping's rules (hex ids in any case, int64 as strings or
numbers, integer enums, lowerCamelCase keys)."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf.json_format import MessageToDict

from tests.collector.otlp_pb import key_values, request
from tests.collector.test_otlp_decode import rich_span
from tracing.collector._otlp_decode import decode_request
from tracing.collector._otlp_json import decode_json_request
from tracing.collector._otlp_span import MAX_DEPTH, BadSpan, DecodeError, OtlpSpan

EXAMPLE = Path(__file__).parent / "data" / "otlp_trace_example.json"


def to_otlp_json(message: Any) -> dict[str, Any]:
    """proto3 JSON with the OTLP deviations: hex ids instead of base64, integer enums."""
    data: dict[str, Any] = MessageToDict(message, use_integers_for_enums=True)

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    fix(value)
        elif isinstance(node, list):
            for item in node:
                fix(item)

    fix(data)
    return data


def only_span(body: dict[str, Any]) -> OtlpSpan | BadSpan:
    # The standard library's encoder: orjson's refuses to nest past 255 levels.
    spans = decode_json_request(json.dumps(body).encode())
    assert len(spans) == 1
    return spans[0]


def test_the_specification_example_with_uppercase_ids() -> None:
    """opentelemetry-proto's examples/trace.json (uppercase hex ids) decodes fully."""
    (span,) = decode_json_request(EXAMPLE.read_bytes())
    assert isinstance(span, OtlpSpan)
    assert span.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert span.span_id == bytes.fromhex("eee19b7ec3c1b174")
    assert span.parent_span_id == bytes.fromhex("eee19b7ec3c1b173")
    assert span.name == "I'm a server span"
    assert span.kind == 2
    assert (span.start_ns, span.end_ns) == (1544712660000000000, 1544712661000000000)
    assert span.attributes == {"my.span.attr": "some value"}
    assert span.resource == {"service.name": "my.service"}
    assert (span.scope_name, span.scope_version) == ("my.library", "1.0.0")


def test_json_and_protobuf_decode_the_same_request_alike() -> None:
    """A rich request gives identical spans from its protobuf and its OTLP/JSON forms."""
    message = request([rich_span(), rich_span()], {"service.name": "shop", "n": 3})
    from_pb = decode_request(message.SerializeToString())
    from_json = decode_json_request(orjson.dumps(to_otlp_json(message)))
    assert from_json == from_pb
    assert len(from_json) == 2


def example() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(EXAMPLE.read_bytes())
    return data


def span_of(body: dict[str, Any]) -> dict[str, Any]:
    span: dict[str, Any] = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    return span


def test_int64_as_numbers_enum_names_and_snake_case_keys() -> None:
    """Times as JSON numbers, enums by name, snake_case field names: all read the same."""
    body = example()
    span = span_of(body)
    span["startTimeUnixNano"] = 1544712660000000000
    span["kind"] = "SPAN_KIND_SERVER"
    span["status"] = {"code": "STATUS_CODE_ERROR", "message": "m"}
    span["attributes"].append({"key": "big", "value": {"intValue": 2**63 - 1}})
    span["attributes"].append({"key": "neg", "value": {"intValue": "-7"}})
    span["attributes"].append({"key": "d", "value": {"doubleValue": "Infinity"}})
    span["end_time_unix_nano"] = span.pop("endTimeUnixNano")
    decoded = only_span(body)
    assert isinstance(decoded, OtlpSpan)
    assert decoded.start_ns == 1544712660000000000
    assert decoded.end_ns == 1544712661000000000
    assert (decoded.kind, decoded.status_code, decoded.status_message) == (2, 2, "m")
    assert decoded.attributes["big"] == 2**63 - 1
    assert decoded.attributes["neg"] == -7
    assert decoded.attributes["d"] == float("inf")


def test_empty_and_missing_lists_are_an_empty_request() -> None:
    """``{}``, empty resourceSpans and scopes without spans hold no spans (and are valid)."""
    assert decode_json_request(b"{}") == []
    assert decode_json_request(b'{"resourceSpans": []}') == []
    assert decode_json_request(b'{"resourceSpans": [{"scopeSpans": [{}]}]}') == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"traceId": "not hex"}, "traceId must be a hex string"),
        ({"spanId": "ab cd ef 01 23 45 67 89"}, "spanId must be a hex string"),
        ({"parentSpanId": 5}, "parentSpanId must be a hex string"),
        ({"name": ["x"]}, "name must be a string"),
        ({"startTimeUnixNano": "soon"}, "startTimeUnixNano must be an integer"),
        ({"startTimeUnixNano": -1}, "out of range"),
        ({"kind": "sideways"}, "kind must be an integer"),
        ({"status": "bad"}, "status must be an object"),
        ({"attributes": {"k": "v"}}, "attributes must be a list"),
        ({"attributes": [{"key": 1}]}, "attributes must be objects"),
        ({"attributes": [{"key": "k", "value": {"intValue": "1.5"}}]}, "intValue"),
        ({"attributes": [{"key": "k", "value": {"intValue": str(2**64)}}]}, "out of range"),
        ({"attributes": [{"key": "k", "value": {"boolValue": "yes"}}]}, "boolValue"),
        ({"attributes": [{"key": "k", "value": {"doubleValue": "x"}}]}, "doubleValue"),
        ({"attributes": [{"key": "k", "value": "plain"}]}, "AnyValue"),
        ({"events": [1]}, "events must be objects"),
        ({"links": "none"}, "links must be a list"),
    ],
)
def test_a_span_with_a_wrong_type_is_rejected_alone(change: dict[str, Any], words: str) -> None:
    """Each wrong type makes its span a BadSpan naming the field; the other span is read."""
    body = example()
    good = span_of(body)
    bad = {**copy.deepcopy(good), **change}
    body["resourceSpans"][0]["scopeSpans"][0]["spans"] = [bad, good]
    first, second = decode_json_request(orjson.dumps(body))
    assert isinstance(first, BadSpan)
    assert words in first.message
    assert isinstance(second, OtlpSpan)


def test_a_span_that_is_not_an_object_is_rejected_alone() -> None:
    body = example()
    body["resourceSpans"][0]["scopeSpans"][0]["spans"].insert(0, "span")
    first, second = decode_json_request(orjson.dumps(body))
    assert isinstance(first, BadSpan)
    assert isinstance(second, OtlpSpan)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for i in range(depth - 1):
        value = (
            {"arrayValue": {"values": [value]}}
            if i % 2
            else {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
        )
    return value


def test_nesting_limit() -> None:
    """128 levels of arrays and kvlists are read; 129 reject the span."""
    body = example()
    span = span_of(body)
    span["attributes"] = [{"key": "deep", "value": nested(MAX_DEPTH)}]
    assert isinstance(only_span(body), OtlpSpan)
    span["attributes"] = [{"key": "deep", "value": nested(MAX_DEPTH + 1)}]
    decoded = only_span(body)
    assert isinstance(decoded, BadSpan)
    assert "128 levels" in decoded.message


def test_a_bad_resource_rejects_its_spans() -> None:
    """A resource whose attributes cannot be read makes each of its spans a BadSpan."""
    body = example()
    body["resourceSpans"][0]["resource"]["attributes"] = [{"key": "k", "value": "plain"}]
    decoded = only_span(body)
    assert isinstance(decoded, BadSpan)
    assert "resource" in decoded.message


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"garbage",
        b"\xff\xfe",
        b"[]",
        b'"text"',
        b'{"resourceSpans": {}}',
        b'{"resourceSpans": [1]}',
        b'{"resourceSpans": [{"scopeSpans": "x"}]}',
        b'{"resourceSpans": [{"resource": []}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"scope": 1}]}]}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_bodies_that_are_not_requests_are_decode_errors(body: bytes) -> None:
    """Not JSON, not an object, or lists that are not lists of objects: the whole body."""
    with pytest.raises(DecodeError):
        decode_json_request(body)


def test_unknown_keys_are_ignored() -> None:
    body = example()
    body["extra"] = {"x": 1}
    span_of(body)["droppedAttributesCount"] = 3
    span_of(body)["somethingNew"] = [1, 2]
    decoded = only_span(body)
    assert isinstance(decoded, OtlpSpan)
    assert decoded.attributes == {"my.span.attr": "some value"}


def test_event_and_link_fields() -> None:
    body = example()
    span = span_of(body)
    span["events"] = [
        {
            "timeUnixNano": "1544712660500000000",
            "name": "exception",
            "attributes": [{"key": "exception.message", "value": {"stringValue": "boom"}}],
        }
    ]
    span["links"] = [{"traceId": "AB" * 16, "spanId": "cd" * 8, "attributes": []}]
    decoded = only_span(body)
    assert isinstance(decoded, OtlpSpan)
    assert decoded.events[0].name == "exception"
    assert decoded.events[0].time_ns == 1544712660500000000
    assert dict(decoded.events[0].attributes) == {"exception.message": "boom"}
    assert decoded.links[0].trace_id == b"\xab" * 16
    assert decoded.links[0].span_id == b"\xcd" * 8
    assert key_values({}) == []
