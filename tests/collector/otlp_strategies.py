"""Hypothesis strategies for the OTLP round-trip properties (``test_otlp_roundtrip``
without a server, ``test_otlp_sdk_e2e`` through the real processes): random traces
this SDK can make, with ids and metadata values drawn from what each property needs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from hypothesis import strategies as st

from tests.collector.conftest import T0
from tracing import LlmUsage, Trace
from tracing import Span as SdkSpan

__all__ = ["JSON_VALUES", "SCALARS", "TEXT", "USAGE", "sdk_traces"]

TEXT = st.text(min_size=1, max_size=20)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Metadata values the OTLP mapping carries with their type (others travel as JSON text).
SCALARS = (
    st.text(max_size=20)
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
)
USAGE = st.none() | st.builds(
    LlmUsage, TEXT, TEXT, st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 50)
)


@st.composite
def sdk_traces(draw: st.DrawFn, ids: st.SearchStrategy[str], values: Any) -> Trace:
    """A trace with up to six spans (nested at random, some failed), its ids from
    ``ids`` and its metadata values from ``values``."""
    start = T0 + timedelta(microseconds=draw(st.integers(0, 10**12)))
    status: Literal["ok", "error"] = draw(st.sampled_from(["ok", "error"]))
    trace = Trace(
        draw(TEXT),
        id=draw(ids),
        start_time=start,
        end_time=start + timedelta(microseconds=draw(st.integers(0, 10**8))),
        status=status,
        error=draw(st.none() | TEXT) if status == "error" else None,
        input=draw(JSON_VALUES),
        output=draw(JSON_VALUES),
        metadata=draw(st.dictionaries(TEXT, values, max_size=4)),
        tags=draw(st.lists(TEXT, max_size=3)),
        description=draw(st.none() | TEXT),
        input_summary=draw(st.none() | TEXT),
        output_summary=draw(st.none() | TEXT),
        llm_usage=draw(USAGE),
    )
    # A span id equal to its trace's id maps to the root's OTLP span id: the same span id,
    # stored once (a limit of the mapping, not of the collector).
    span_ids = draw(st.lists(ids.filter(lambda i: i != trace.id), max_size=6, unique=True))
    for index, span_id in enumerate(span_ids):
        begin = start + timedelta(microseconds=draw(st.integers(0, 10**7)))
        span = SdkSpan(
            draw(TEXT),
            id=span_id,
            parent_id=draw(st.none() | st.sampled_from(span_ids[:index])) if index else None,
            start_time=begin,
            end_time=begin + timedelta(microseconds=draw(st.integers(0, 10**7))),
            input=draw(JSON_VALUES),
            output=draw(JSON_VALUES),
            metadata=draw(st.dictionaries(TEXT, values, max_size=3)),
            llm_usage=draw(USAGE),
        )
        if draw(st.booleans()):
            span.status, span.error = "error", draw(st.none() | TEXT)
        trace.spans.append(span)
    return trace
