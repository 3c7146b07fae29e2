"""The round trip as a property, without a server: any trace this SDK can make, encoded
by the ``protocol="otlp"`` mapping (``otlp_pb``), decoded, mapped and grouped, is the
trace the batch route would store, whatever order its spans arrive in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.conftest import T0
from tests.collector.otlp_pb import request, sdk_spans
from tests.collector.test_otlp_map import expected, stored
from tracing import LlmUsage, Trace
from tracing import Span as SdkSpan
from tracing.collector._otlp_ingest import read_records
from tracing.collector._otlp_response import PROTOBUF

TEXT = st.text(min_size=1, max_size=20)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
USAGE = st.none() | st.builds(
    LlmUsage, TEXT, TEXT, st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 50)
)
IDS = st.one_of(
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: u.hex.upper()),
    st.text(min_size=1, max_size=40),
)


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    start = T0 + timedelta(microseconds=draw(st.integers(0, 10**12)))
    status: Literal["ok", "error"] = draw(st.sampled_from(["ok", "error"]))
    trace = Trace(
        draw(TEXT),
        id=draw(IDS),
        start_time=start,
        end_time=start + timedelta(microseconds=draw(st.integers(0, 10**8))),
        status=status,
        error=draw(TEXT) if status == "error" else None,
        input=draw(JSON_VALUES),
        output=draw(JSON_VALUES),
        metadata=draw(st.dictionaries(TEXT, JSON_VALUES, max_size=4)),
        tags=draw(st.lists(TEXT, max_size=3)),
        description=draw(st.none() | TEXT),
        input_summary=draw(st.none() | TEXT),
        output_summary=draw(st.none() | TEXT),
        llm_usage=draw(USAGE),
    )
    # A span id equal to its trace's id maps to the root's OTLP span id: the same span id,
    # stored once (a limit of the mapping, not of the collector).
    span_ids = draw(st.lists(IDS.filter(lambda i: i != trace.id), max_size=6, unique=True))
    for index, span_id in enumerate(span_ids):
        begin = start + timedelta(microseconds=draw(st.integers(0, 10**7)))
        parent = draw(st.none() | st.sampled_from(span_ids[:index])) if index else None
        error = draw(st.none() | TEXT)
        span = SdkSpan(
            draw(TEXT),
            id=span_id,
            parent_id=parent,
            start_time=begin,
            end_time=begin + timedelta(microseconds=draw(st.integers(0, 10**7))),
            input=draw(JSON_VALUES),
            output=draw(JSON_VALUES),
            metadata=draw(st.dictionaries(TEXT, JSON_VALUES, max_size=3)),
            llm_usage=draw(USAGE),
        )
        if error is not None:
            span.status, span.error = "error", error
        trace.spans.append(span)
    return trace


@settings(
    max_examples=100, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(trace=traces(), order=st.randoms(use_true_random=False))
def test_any_sdk_trace_reads_back_in_any_arrival_order(trace: Trace, order: Any) -> None:
    """Random traces (any ids, unicode, nesting, usage, errors), spans in any order."""
    records, _ = read_records(request(sdk_spans(trace)).SerializeToString(), PROTOBUF)
    assert stored(records) == expected(trace)
    shuffled = list(records)
    order.shuffle(shuffled)
    document = stored(shuffled)
    by_id = {s["id"]: s for s in document["spans"]}
    assert {k: v for k, v in document.items() if k != "spans"} == {
        k: v for k, v in expected(trace).items() if k != "spans"
    }
    assert by_id == {s["id"]: s for s in expected(trace)["spans"]}
