"""The round trip as a property, without a server: any trace this SDK can make, encoded
by the ``protocol="otlp"`` mapping (``otlp_pb``), decoded, mapped and grouped, is the
trace the batch route would store, whatever order its spans arrive in."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.otlp_pb import request, sdk_spans
from tests.collector.otlp_strategies import JSON_VALUES, sdk_traces
from tests.collector.test_otlp_map import expected, stored
from tracing import Trace
from tracing.collector._otlp_ingest import read_records
from tracing.collector._otlp_response import PROTOBUF

IDS = st.one_of(
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: u.hex.upper()),
    st.text(min_size=1, max_size=40),
)


@settings(
    max_examples=100, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(trace=sdk_traces(IDS, JSON_VALUES), order=st.randoms(use_true_random=False))
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
