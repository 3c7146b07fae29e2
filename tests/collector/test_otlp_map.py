"""OTLP spans to records to traces (``_otlp_ingest``, ``_otlp_map``, ``_otlp_group``),
without a server: this SDK's ``protocol="otlp"`` mapping read back exactly, spans of other
SDKs kept whole, and the per-span rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.collector.conftest import T0, at
from tests.collector.otlp_pb import key_values, request, sdk_request
from tracing import LlmUsage, Trace
from tracing import Span as SdkSpan
from tracing._wire import trace_to_wire
from tracing.collector._otlp_group import group_records
from tracing.collector._otlp_ingest import read_records, read_request
from tracing.collector._otlp_map import OtlpRecord
from tracing.collector._otlp_response import PROTOBUF
from tracing.collector._validate import ValidTrace, validate_trace

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
ROOT = bytes.fromhex("b7ad6b7169203331")
CHILD = bytes.fromhex("00f067aa0ba902b7")
GRANDCHILD = bytes.fromhex("1111111111111111")
START = 1_764_000_000_000_000_000


def records_of(*spans: Span, resource: dict[str, Any] | None = None) -> list[OtlpRecord]:
    records, rejected = read_records(request(spans, resource).SerializeToString(), PROTOBUF)
    assert rejected == []
    return records


def stored(records: Iterable[OtlpRecord]) -> dict[str, Any]:
    """The document the store gets for one trace whose root is among ``records``."""
    grouped = group_records(list(records))
    assert grouped.rejected == []
    assert grouped.spans == []
    (root,) = grouped.roots
    document: dict[str, Any] = orjson.loads(root.document)
    return document


def expected(trace: Trace) -> dict[str, Any]:
    checked = validate_trace(orjson.loads(orjson.dumps(trace_to_wire(trace))))
    assert isinstance(checked, ValidTrace)
    document: dict[str, Any] = orjson.loads(checked.document)
    return document


def sdk_records(traces: Sequence[Trace]) -> list[OtlpRecord]:
    records, rejected = read_records(sdk_request(traces).SerializeToString(), PROTOBUF)
    assert rejected == []
    return records


def full_trace(trace_id: str | None = None) -> Trace:
    trace = Trace(
        "agent.run",
        id=trace_id,
        start_time=T0,
        end_time=at(3),
        status="error",
        error="tool failed",
        input={"question": "why?", "n": [1, 2.5, None, True]},
        output="because",
        metadata={"user": "u1", "n": 3, "ratio": 0.5, "flag": False, "nested": {"a": [1]}},
        tags=["prod", "v2"],
        description="a run",
        input_summary="in",
        output_summary="out",
        llm_usage=LlmUsage("gpt-4o", "openai", 30, 12, 3),
    )
    plan = SdkSpan("plan", start_time=at(0.1), end_time=at(2), input="p", output={"steps": 2})
    llm = SdkSpan(
        "llm",
        parent_id=plan.id,
        start_time=at(0.2),
        end_time=at(1),
        llm_usage=LlmUsage("gpt-4o-mini", "openai", 10, 5),
        metadata={"temperature": 0.2},
    )
    tool = SdkSpan("tool", parent_id=plan.id, start_time=at(1), end_time=at(1.5))
    tool.status, tool.error = "error", "timeout"
    trace.spans.extend([plan, llm, tool])
    return trace


def test_an_sdk_trace_reads_back_as_sent() -> None:
    """Root span -> the trace; ids, parents, input/output, usage, tags, metadata restored."""
    trace = full_trace()
    assert stored(sdk_records([trace])) == expected(trace)


def test_a_32_hex_trace_id_reads_back() -> None:
    """A 32-hex id (used as the OTLP trace id itself) and uppercase hex stay as given."""
    for trace_id in ("0af7651916cd43dd8448eb211c80319c", "0AF7651916CD43DD8448EB211C80319C"):
        trace = full_trace(trace_id)
        assert stored(sdk_records([trace]))["id"] == trace_id


def test_children_before_the_root_give_the_same_trace() -> None:
    """The root arriving last (or first, or between) changes nothing in the result."""
    trace = full_trace()
    records = sdk_records([trace])
    root, children = records[0], records[1:]
    assert stored([*children, root])["spans"] == stored(records)["spans"]
    assert {k: v for k, v in stored([*children, root]).items() if k != "spans"} == {
        k: v for k, v in expected(trace).items() if k != "spans"
    }


def test_spans_without_their_root_go_to_the_hex_trace_id() -> None:
    """No root in the request: loose spans of the hex trace id (the store's provisional
    trace); a link to the absent root keeps the root's hex span id."""
    trace = full_trace()
    children = sdk_records([trace])[1:]
    grouped = group_records(children)
    assert grouped.roots == []
    assert {s.trace_id for s in grouped.spans} == {children[0].trace_key}
    assert [s.id for s in grouped.spans] == [s.id for s in trace.spans]
    plan = orjson.loads(grouped.spans[0].body)
    assert plan["parentId"] == children[0].parent_key
    llm = orjson.loads(grouped.spans[1].body)
    assert llm["parentId"] == trace.spans[0].id  # its parent is in the request


def test_one_request_with_several_traces() -> None:
    """Spans of two traces in one request: each trace grouped on its own."""
    first, second = full_trace(), full_trace()
    grouped = group_records(sdk_records([first, second]))
    assert [r.id for r in grouped.roots] == [first.id, second.id]
    assert [len(r.spans) for r in grouped.roots] == [3, 3]
    assert grouped.traces == 2


def test_a_span_repeated_in_one_request_is_kept_once() -> None:
    trace = full_trace()
    records = sdk_records([trace])
    document = stored([*records, records[1], records[0]])
    assert [s["id"] for s in document["spans"]] == [s.id for s in trace.spans]


def test_a_bad_span_is_rejected_and_its_trace_kept() -> None:
    """One span of a trace breaks a rule: it alone is named; the others are stored."""
    bad = foreign(GRANDCHILD, CHILD, attributes={"gen_ai.usage.input_tokens": 1})
    bad_fields = {"llmUsage": {"promptTokens": -1}}
    records = records_of(foreign(ROOT), foreign(CHILD, ROOT), bad)
    records[2] = OtlpRecord(
        records[2].trace_key,
        records[2].span_key,
        records[2].parent_key,
        records[2].start_us,
        {**records[2].fields, **bad_fields},
    )
    grouped = group_records(records)
    (message,) = grouped.rejected
    assert message.startswith(f"span {GRANDCHILD.hex()}: ")
    assert "promptTokens must be a non-negative integer" in message
    (root,) = grouped.roots
    assert [s.id for s in root.spans] == [CHILD.hex()]


def test_a_child_before_its_parent_points_at_the_parent_once_it_arrives() -> None:
    trace = full_trace()
    records = sdk_records([trace])
    root, plan, llm, _tool = records
    alone = stored([root, llm])
    assert alone["spans"][0]["parentId"] == plan.span_key
    both = stored([root, llm, plan])
    assert both["spans"][0]["parentId"] == trace.spans[0].id


def foreign(span_id: bytes, parent: bytes = b"", name: str = "op", **fields: Any) -> Span:
    attributes = fields.pop("attributes", {})
    return Span(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        start_time_unix_nano=fields.pop("start", START),
        end_time_unix_nano=fields.pop("end", START + 10**9),
        attributes=key_values(attributes),
        **fields,
    )


def test_spans_of_another_sdk_keep_their_ids_and_attributes() -> None:
    """Hex ids, parentId null under the root, attributes as metadata under their names."""
    root = foreign(
        ROOT,
        name="GET /items/{id}",
        kind=Span.SPAN_KIND_SERVER,
        attributes={"http.route": "/items/{id}", "http.response.status_code": 200},
    )
    child = foreign(
        CHILD,
        ROOT,
        "chat gpt-4o",
        kind=Span.SPAN_KIND_CLIENT,
        start=START + 10**8,
        attributes={
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 7,
            "gen_ai.usage.output_tokens": 3,
            "input.value": "hello",
        },
    )
    grandchild = foreign(GRANDCHILD, CHILD, "db", start=START + 2 * 10**8)
    document = stored(records_of(grandchild, child, root, resource={"service.name": "shop"}))
    assert document["id"] == TRACE.hex()
    assert document["name"] == "GET /items/{id}"
    assert document["metadata"] == {
        "http.route": "/items/{id}",
        "http.response.status_code": 200,
        "otel.span.kind": "server",
        "service.name": "shop",
    }
    db, chat = document["spans"]
    assert (chat["id"], chat["parentId"]) == (CHILD.hex(), None)
    assert (db["id"], db["parentId"]) == (GRANDCHILD.hex(), CHILD.hex())
    assert chat["input"] == "hello"
    assert chat["llmUsage"] == {
        "model": "gpt-4o",
        "provider": "openai",
        "promptTokens": 7,
        "completionTokens": 3,
        "apiCallsCount": 1,
    }
    assert chat["metadata"]["gen_ai.usage.input_tokens"] == 7  # kept as sent, too
    assert chat["metadata"]["otel.span.kind"] == "client"
    assert document["startTime"] == "2025-11-24T16:00:00.000000Z"
    assert document["duration"] == 1.0


def test_status_error_takes_the_exception_message_when_its_own_is_empty() -> None:
    event = Span.Event(
        name="exception",
        time_unix_nano=START + 5,
        attributes=key_values({"exception.type": "KeyError", "exception.message": "'k'"}),
    )
    root = foreign(ROOT, status=Status(code=Status.STATUS_CODE_ERROR), events=[event])
    document = stored(records_of(root))
    assert (document["status"], document["error"]) == ("error", "'k'")
    assert document["metadata"]["otel.events"][0]["name"] == "exception"
    assert document["metadata"]["otel.events"][0]["attributes"]["exception.type"] == "KeyError"
    ok = foreign(ROOT, status=Status(code=Status.STATUS_CODE_OK, message="ignored"))
    assert (stored(records_of(ok))["status"], stored(records_of(ok))["error"]) == ("ok", None)


def test_links_are_kept_in_metadata() -> None:
    root = foreign(ROOT, links=[Span.Link(trace_id=TRACE, span_id=CHILD)])
    (link,) = stored(records_of(root))["metadata"]["otel.links"]
    assert link == {"traceId": TRACE.hex(), "spanId": CHILD.hex(), "attributes": {}}


def test_values_that_do_not_fit_their_field_stay_in_metadata() -> None:
    """Negative tokens, non-string tags and non-JSON input are kept, not dropped."""
    root = foreign(
        ROOT,
        attributes={
            "tracing.trace.id": "t-1",
            "tracing.tags": [1, 2],
            "gen_ai.usage.input_tokens": -4,
            "input.value": "{not json",
            "input.mime_type": "application/json",
            "output.value": "<b/>",
            "output.mime_type": "text/html",
        },
    )
    document = stored(records_of(root))
    assert document["id"] == "t-1"
    assert document["tags"] == []
    assert document["input"] == "{not json"
    assert document["output"] == "<b/>"
    assert document["metadata"] == {
        "tracing.tags": [1, 2],
        "gen_ai.usage.input_tokens": -4,
        "output.mime_type": "text/html",
    }
    assert document["llmUsage"] is None


def rejected(*spans: Span) -> list[str]:
    return read_request(request(spans).SerializeToString(), PROTOBUF).rejected


def test_per_span_rules_reject_that_span_alone() -> None:
    """Bad ids, missing times, an end before its start, empty or long names, long ids."""
    good = foreign(ROOT)
    cases = {
        "traceId must be 16 bytes": Span(trace_id=b"\x00" * 16, span_id=ROOT, name="n"),
        "spanId must be 8 bytes": Span(trace_id=TRACE, span_id=b"\x01" * 4, name="n"),
        "parentSpanId must be empty or 8 bytes": foreign(CHILD, b"\x01\x02"),
        "startTimeUnixNano is required": foreign(CHILD, ROOT, start=0),
        "endTimeUnixNano is before": foreign(CHILD, ROOT, start=START, end=START - 1),
        "name must be a non-empty string": Span(
            trace_id=b"\x08" * 16, span_id=ROOT, name="", start_time_unix_nano=START
        ),
        "name is 2000 characters": foreign(CHILD, ROOT, name="n" * 2000),
        "id is 300 characters": Span(
            trace_id=b"\x07" * 16,
            span_id=ROOT,
            name="n",
            start_time_unix_nano=START,
            attributes=key_values({"tracing.trace.id": "t" * 300}),
        ),
    }
    for words, span in cases.items():
        (message,) = rejected(good, span)
        assert words in message, (words, message)


def test_end_time_zero_is_an_open_span() -> None:
    document = stored(records_of(foreign(ROOT), foreign(CHILD, ROOT, end=0)))
    assert document["spans"][0]["endTime"] is None


def test_nanoseconds_are_truncated_to_microseconds() -> None:
    document = stored(records_of(foreign(ROOT, start=START + 1999, end=START + 10**9 + 999)))
    assert document["startTime"] == "2025-11-24T16:00:00.000001Z"
    assert document["endTime"] == "2025-11-24T16:00:01.000000Z"


def test_a_second_parentless_span_is_a_top_level_span() -> None:
    first = foreign(ROOT, name="first")
    second = foreign(CHILD, name="second", start=START + 1000)
    document = stored(records_of(second, first))
    assert document["name"] == "first"
    assert [(s["id"], s["parentId"], s["name"]) for s in document["spans"]] == [
        (CHILD.hex(), None, "second")
    ]
