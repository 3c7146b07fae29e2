"""The OTLP mapping (README "OTLP"): every payload the SDK sends in OTLP mode, decoded with
the official ``opentelemetry-proto`` classes, field by field."""

from __future__ import annotations

import calendar
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracing
from tests._otlp import PbSpan, attributes, decode_request, spans_of
from tests._server import FaultServer
from tests.conftest import MakeTracer
from tracing import LlmUsage, Span, Trace
from tracing._otlp import OtlpProtocol

T0 = datetime(2026, 11, 21, 23, 59, 58, 123456, tzinfo=UTC)


# The mapping written out independently of the SDK's encoder ----------------------------


def _sha(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def _is_hex32(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdefABCDEF" for c in value)


def otlp_trace_id(value: str) -> bytes:
    return bytes.fromhex(value) if _is_hex32(value) else _sha(value)[:16]


def otlp_span_id(value: str) -> bytes:
    return bytes.fromhex(value)[:8] if _is_hex32(value) else _sha(value)[:8]


def ns(value: datetime) -> int:
    return calendar.timegm(value.utctimetuple()) * 10**9 + value.microsecond * 1000


def _io(prefix: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {f"{prefix}.value": value, f"{prefix}.mime_type": "text/plain"}
    return {
        f"{prefix}.value": json.dumps(value, separators=(",", ":"), ensure_ascii=False),
        f"{prefix}.mime_type": "application/json",
    }


def _meta(value: Any) -> Any:
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def expected_attributes(record: Trace | Span) -> dict[str, Any]:
    out = _io("input", record.input) | _io("output", record.output)
    usage = record.llm_usage
    if usage is not None:
        out |= {
            "gen_ai.request.model": usage.model,
            "gen_ai.provider.name": usage.provider,
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "tracing.llm.api_calls_count": usage.api_calls_count,
        }
    return out | {f"metadata.{k}": _meta(v) for k, v in record.metadata.items()}


def expected_span(record: Trace | Span, trace: Trace) -> dict[str, Any]:
    """What the README's table says one span must hold."""
    root_id = otlp_span_id(trace.id)
    attrs = expected_attributes(record)
    if isinstance(record, Trace):
        span_id, parent = root_id, b""
        attrs["tracing.trace.id"] = trace.id
        if trace.tags:
            attrs["tracing.tags"] = list(trace.tags)
        for key in ("description", "input_summary", "output_summary"):
            if getattr(trace, key) is not None:
                attrs[f"tracing.{key}"] = getattr(trace, key)
    else:
        span_id = otlp_span_id(record.id)
        parent = root_id if record.parent_id is None else otlp_span_id(record.parent_id)
        attrs["tracing.span.id"] = record.id
    assert record.end_time is not None
    events: list[Any] = []
    status: tuple[int, str] = (0, "")
    if record.status == "error":
        status = (2, record.error or "")
        message = {} if record.error is None else {"exception.message": record.error}
        events = [("exception", ns(record.end_time), message)]
    return {
        "trace_id": otlp_trace_id(trace.id),
        "span_id": span_id,
        "parent_span_id": parent,
        "name": record.name,
        "kind": PbSpan.SpanKind.SPAN_KIND_INTERNAL,
        "start": ns(record.start_time),
        "end": ns(record.end_time),
        "attributes": attrs,
        "status": status,
        "events": events,
        "links": 0,
        "flags": 0,
        "trace_state": "",
    }


def decoded_span(span: PbSpan) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "start": span.start_time_unix_nano,
        "end": span.end_time_unix_nano,
        "attributes": attributes(span),
        "status": (span.status.code, span.status.message),
        "events": [(e.name, e.time_unix_nano, attributes(e)) for e in span.events],
        "links": len(span.links),
        "flags": span.flags,
        "trace_state": span.trace_state,
    }


def expected_spans(trace: Trace) -> list[dict[str, Any]]:
    return [expected_span(trace, trace)] + [expected_span(s, trace) for s in trace.spans]


def check_request(raw: bytes, traces: list[Trace], encoding: str | None = None) -> Any:
    """Parse a body and compare every span of it with ``traces`` (in order)."""
    request = decode_request(raw, encoding)
    assert [decoded_span(s) for s in spans_of(request)] == [
        span for trace in traces for span in expected_spans(trace)
    ]
    return request


def full_trace() -> Trace:
    trace = Trace(
        "summarize",
        id="trace-1",
        start_time=T0,
        end_time=T0 + timedelta(seconds=2),
        status="error",
        error="boom: ünïcødé ☃",
        input={"question": "what?", "n": [1, 2.5, None]},
        output="an answer",
        description="a description",
        input_summary="in short",
        output_summary="out short",
        metadata={"user": "u-1", "n": 7, "ratio": 0.25, "flag": True, "nested": {"a": [1]}},
        tags=["prod", "beta"],
        llm_usage=LlmUsage("gpt-4o", "openai", prompt_tokens=10, completion_tokens=20),
    )
    outer = Span(
        "retrieve",
        id="0123456789abcdef0123456789ABCDEF",
        start_time=T0 + timedelta(milliseconds=1),
        end_time=T0 + timedelta(milliseconds=900),
        input="query",
        output=["doc1", "doc2"],
        metadata={"k": 3},
    )
    inner = Span(
        "llm",
        id="span-inner",
        parent_id=outer.id,
        start_time=T0 + timedelta(milliseconds=10),
        end_time=T0 + timedelta(milliseconds=800),
        status="error",
        error="rate limited",
        llm_usage=LlmUsage("claude", "anthropic", 5, 6, api_calls_count=2),
    )
    trace.spans.extend([outer, inner])
    return trace


# Through the SDK to a real server ------------------------------------------------------


async def test_full_trace_every_field(server: FaultServer, make_tracer: MakeTracer) -> None:
    """A trace with nested spans, errors, usage and unicode arrives with every mapped field."""
    tracer = make_tracer(protocol="otlp", service_name="checkout")
    trace = full_trace()
    assert tracer.enqueue(trace)
    await tracer.flush()
    (request,) = server.requests
    assert request.path == "/v1/traces"
    check_request(request.raw, [trace])
    root, outer, inner = spans_of(request.otlp)
    # The same, spelled out for the key links and values.
    assert root.trace_id == hashlib.sha256(b"trace-1").digest()[:16]
    assert root.span_id == hashlib.sha256(b"trace-1").digest()[:8]
    assert root.parent_span_id == b""
    assert outer.span_id == bytes.fromhex("0123456789abcdef")
    assert outer.parent_span_id == root.span_id
    assert inner.parent_span_id == outer.span_id
    assert inner.span_id == hashlib.sha256(b"span-inner").digest()[:8]
    assert root.start_time_unix_nano == 1795305598123456000
    assert root.end_time_unix_nano == 1795305600123456000
    assert (root.status.code, root.status.message) == (2, "boom: ünïcødé ☃")
    (event,) = root.events
    assert (event.name, event.time_unix_nano) == ("exception", root.end_time_unix_nano)
    assert attributes(event) == {"exception.message": "boom: ünïcødé ☃"}
    attrs = attributes(root)
    assert attrs["input.value"] == '{"question":"what?","n":[1,2.5,null]}'
    assert attrs["tracing.tags"] == ["prod", "beta"]
    assert attrs["metadata.nested"] == '{"a":[1]}'
    assert attributes(inner)["tracing.llm.api_calls_count"] == 2
    assert not outer.HasField("status")
    assert not outer.events


async def test_resource_and_scope(server: FaultServer, make_tracer: MakeTracer) -> None:
    """One resource (service.name, telemetry.sdk.*) and one scope (tracing, version)."""
    tracer = make_tracer(protocol="otlp", service_name="checkout")
    tracer.enqueue(Trace("a"))
    tracer.enqueue(Trace("b"))
    await tracer.flush()
    request = server.requests[0].otlp
    (resource_spans,) = request.resource_spans
    assert attributes(resource_spans.resource) == {
        "service.name": "checkout",
        "telemetry.sdk.name": "tracing",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": tracing.__version__,
    }
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("tracing", tracing.__version__)
    assert [s.name for s in scope_spans.spans] == ["a", "b"]


async def test_service_name_from_env_and_default(
    server: FaultServer, make_tracer: MakeTracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """service.name is OTEL_SERVICE_NAME without the argument, else "unknown_service"."""
    default = make_tracer(protocol="otlp")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    from_env = make_tracer(protocol="otlp")
    explicit = make_tracer(protocol="otlp", service_name="explicit")
    for tracer in (default, from_env, explicit):
        await tracer.send_batch([Trace("t")])
    names = [attributes(r.otlp.resource_spans[0].resource)["service.name"] for r in server.requests]
    assert names == ["unknown_service", "from-env", "explicit"]


async def test_minimal_trace_sets_only_what_is_set(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A trace with nothing set but its name carries only tracing.trace.id; status UNSET."""
    tracer = make_tracer(protocol="otlp")
    trace = Trace("bare")
    await tracer.send_batch([trace])
    (root,) = spans_of(server.requests[0].otlp)
    assert attributes(root) == {"tracing.trace.id": trace.id}
    assert root.trace_id == bytes.fromhex(trace.id)  # generated ids are 32 hex
    assert root.span_id == bytes.fromhex(trace.id)[:8]
    assert not root.HasField("status")
    assert not root.events
    assert root.kind == PbSpan.SpanKind.SPAN_KIND_INTERNAL


async def test_spans_made_by_the_api(server: FaultServer, make_tracer: MakeTracer) -> None:
    """Spans made with trace.span() (nested by context) map to their parents."""
    tracer = make_tracer(protocol="otlp")
    async with tracer.trace("agent", input="go") as trace:
        with trace.span("plan"), trace.span("tool", input={"x": 1}) as tool:
            tool.end(output="done", error=ValueError("bad input"))
        with trace.span("answer") as answer:
            answer.end(llm_usage=LlmUsage("m", "p", 1, 2))
    await tracer.flush()
    request = check_request(server.requests[0].raw, [trace])
    root, plan, tool_span, answer_span = spans_of(request)
    assert plan.parent_span_id == root.span_id == answer_span.parent_span_id
    assert tool_span.parent_span_id == plan.span_id
    assert tool_span.status.message == "bad input"


async def test_gzip_body(server: FaultServer, make_tracer: MakeTracer) -> None:
    """compression="gzip" gzips the protobuf body; it decodes to the same spans."""
    tracer = make_tracer(protocol="otlp", compression="gzip")
    trace = full_trace()
    await tracer.send_batch([trace])
    (request,) = server.requests
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.raw[:2] == b"\x1f\x8b"
    check_request(request.raw, [trace], "gzip")


@pytest.mark.parametrize(
    ("trace_id", "expected"),
    [
        ("0123456789abcdef0123456789abcdef", bytes.fromhex("0123456789abcdef0123456789abcdef")),
        ("0123456789ABCDEF0123456789ABCDEF", bytes.fromhex("0123456789abcdef0123456789abcdef")),
        ("0123456789abcdef0123456789abcde", hashlib.sha256(b"0123456789abcdef0123456789abcde")),
        ("0123456789abcdef 123456789abcdef", hashlib.sha256(b"0123456789abcdef 123456789abcdef")),
        ("g123456789abcdef0123456789abcdef", hashlib.sha256(b"g123456789abcdef0123456789abcdef")),
        ("ticket-42", hashlib.sha256(b"ticket-42")),
        ("ключ-☃", hashlib.sha256("ключ-☃".encode())),
    ],
)
async def test_trace_id_rule(
    server: FaultServer, make_tracer: MakeTracer, trace_id: str, expected: Any
) -> None:
    """32 hex digits (either case) are the id's bytes; anything else hashes (SHA-256)."""
    raw = expected if isinstance(expected, bytes) else expected.digest()[:16]
    tracer = make_tracer(protocol="otlp")
    await tracer.send_batch([Trace("t", id=trace_id)])
    (root,) = spans_of(server.requests[0].otlp)
    assert root.trace_id == raw
    assert root.span_id == raw[:8]
    assert attributes(root)["tracing.trace.id"] == trace_id


async def test_ids_are_stable_across_retries(server: FaultServer, make_tracer: MakeTracer) -> None:
    """A retried batch carries the same trace and span ids, byte for byte."""
    tracer = make_tracer(protocol="otlp", max_retries=1)
    server.respond_with(503)
    trace = full_trace()
    await tracer.send_batch([trace])
    first, second = server.requests
    assert first.raw == second.raw
    assert tracer.stats().retries == 0  # send_batch bypasses the counters


async def test_big_values_and_numbers(server: FaultServer, make_tracer: MakeTracer) -> None:
    """Megabyte strings, ints beyond int64, int64 bounds, floats and non-str keys encode."""
    big = "x" * (1 << 20) + "☃"
    metadata: dict[Any, Any] = {
        "huge": 2**70,
        "min": -(2**63),
        "max": 2**63 - 1,
        "neg": -5,
        "inf": float("inf"),
        "none": None,
        7: "int key",
        "list": ["a", 1],
    }
    trace = Trace("big", input=big, output={"k": big}, metadata=metadata)
    trace.spans.append(Span("child", metadata={"big": big}))
    trace.end_time = trace.start_time
    tracer = make_tracer(protocol="otlp")
    await tracer.send_batch([trace])
    root, child = spans_of(server.requests[0].otlp)
    attrs = attributes(root)
    assert attrs["input.value"] == big
    assert json.loads(attrs["output.value"]) == {"k": big}
    assert attrs["metadata.huge"] == str(2**70)
    assert (attrs["metadata.min"], attrs["metadata.max"]) == (-(2**63), 2**63 - 1)
    assert attrs["metadata.neg"] == -5
    assert attrs["metadata.inf"] == float("inf")
    assert attrs["metadata.none"] == "null"
    assert attrs["metadata.7"] == "int key"
    assert attrs["metadata.list"] == '["a",1]'
    assert attributes(child)["metadata.big"] == big


async def test_batch_of_many_traces_in_order(server: FaultServer, make_tracer: MakeTracer) -> None:
    """A batch is one request whose root spans are the traces, in queue order."""
    tracer = make_tracer(protocol="otlp", max_batch_size=50)
    traces = [Trace(f"t{i}", id=f"id-{i}", metadata={"i": i}) for i in range(120)]
    for trace in traces:
        tracer.enqueue(trace)
    await tracer.flush()
    assert [len(r.trace_ids) for r in server.requests] == [50, 50, 20]
    assert [i for r in server.requests for i in r.trace_ids] == [t.id for t in traces]
    for request, chunk in zip(
        server.requests, [traces[:50], traces[50:100], traces[100:]], strict=True
    ):
        check_request(request.raw, chunk)


async def test_surrogates_do_not_break_the_batch(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A lone surrogate (invalid in UTF-8) is replaced, and the body still parses."""
    tracer = make_tracer(protocol="otlp")
    trace = Trace("bad \ud800 name", input="in \udfff", metadata={"k": "\ud83d"})
    await tracer.send_batch([trace])
    (root,) = spans_of(server.requests[0].otlp)
    assert root.name == "bad ? name"
    assert attributes(root)["input.value"] == "in ?"


async def test_unencodable_trace_fails_alone(server: FaultServer, make_tracer: MakeTracer) -> None:
    """A trace whose input cannot be written as JSON fails alone; the rest is sent."""
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    tracer = make_tracer(protocol="otlp")
    result = await tracer.send_batch([Trace("ok", id="a"), Trace("bad", id="b", input=cyclic)])
    assert [r.success for r in result.results] == [True, False]
    assert "cannot be encoded as OTLP" in result.results[1].message
    assert server.requests[0].trace_ids == ["a"]


# Property: any trace the model allows maps as the table says ----------------------------

_text = st.text(max_size=40)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_meta_values = _json | st.floats(allow_nan=False)
_times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
_usage = st.none() | st.builds(
    LlmUsage,
    _text,
    _text,
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.integers(0, 100),
)
_ids = st.text(min_size=1, max_size=40) | st.binary(min_size=16, max_size=16).map(bytes.hex)


@st.composite
def traces_(draw: st.DrawFn) -> Trace:
    start = draw(_times)
    status: Literal["ok", "error"] = draw(st.sampled_from(["ok", "error"]))
    trace = Trace(
        draw(st.text(min_size=1, max_size=30)),
        id=draw(_ids),
        start_time=start,
        end_time=start + timedelta(microseconds=draw(st.integers(0, 10**9))),
        status=status,
        error=draw(st.none() | _text),
        input=draw(_json),
        output=draw(_json),
        metadata=draw(st.dictionaries(_text, _meta_values, max_size=4)),
        tags=draw(st.lists(_text, max_size=3)),
        description=draw(st.none() | _text),
        llm_usage=draw(_usage),
    )
    ids: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        span_start = draw(_times)
        span = Span(
            draw(st.text(min_size=1, max_size=20)),
            id=draw(_ids),
            parent_id=draw(st.none() | st.sampled_from(ids)) if ids else None,
            start_time=span_start,
            end_time=span_start,
            status=draw(st.sampled_from(["ok", "error"])),
            error=draw(st.none() | _text),
            input=draw(_json),
            metadata=draw(st.dictionaries(_text, _meta_values, max_size=3)),
            llm_usage=draw(_usage),
        )
        ids.append(span.id)
        trace.spans.append(span)
    return trace


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(traces_(), min_size=1, max_size=3))
def test_any_trace_maps_as_documented(traces: list[Trace]) -> None:
    """Random traces (ids, times, values, nesting) encode exactly to the documented spans."""
    protocol = OtlpProtocol("svc")
    body = protocol.join([protocol.encode_trace(t) for t in traces])
    check_request(body, traces)


async def test_non_str_metadata_keys_are_named_by_str(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Keys that are not strings are named by ``str()``, each its own (1 is not True)."""
    tracer = make_tracer(protocol="otlp")
    one: dict[Any, Any] = {1: "one"}
    true: dict[Any, Any] = {True: "t"}
    await tracer.send_batch([Trace("a", metadata=one), Trace("b", metadata=true)])
    first, second = spans_of(server.requests[0].otlp)
    assert attributes(first)["metadata.1"] == "one"
    assert attributes(second)["metadata.True"] == "t"
