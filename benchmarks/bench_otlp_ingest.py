"""The collector's cost per span to read an OTLP request, against its batch route on the
same traces, and against upb (protobuf's C parser) decoding the same bytes.

    python -m benchmarks.bench_otlp_ingest [--append benchmarks/RESULTS.md]

The workloads of ``bench_encode`` (100 traces per request). For each, CPU time per span
of what the route does before the store is called:

- ``batch route``: ``POST /api/traces/batch`` on the SDK's JSON body (parse the envelope,
  validate and normalise each trace): the baseline.
- ``OTLP protobuf``: ``POST /v1/traces`` on the SDK's ``protocol="otlp"`` body (decode,
  map the attributes back, group into traces, validate): ``read_request``.
- ``OTLP JSON``: the same request in the OTLP JSON mapping.
- ``upb parse only``: ``ExportTraceServiceRequest.ParseFromString`` of the protobuf body,
  C code that builds message objects and maps nothing: a floor for the decoding part,
  not a path (it would still need the mapping, and the ``protobuf`` dependency).

Before timing, each workload's OTLP result is checked to be the traces the batch route
makes of the same records.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracing import Trace
from tracing._otlp import OtlpProtocol
from tracing._wire import encode_batch
from tracing.collector._otlp_ingest import read_request
from tracing.collector._otlp_response import JSON, PROTOBUF
from tracing.collector._validate import ValidTrace, parse_envelope, validate_trace

from ._common import ROUNDS, TRACES, markdown_section, per_span_us, run_workloads


def otlp_json(body: bytes) -> bytes:
    """The protobuf body in the OTLP JSON mapping (hex ids, integer enums)."""
    message = ExportTraceServiceRequest()
    message.ParseFromString(body)
    data = MessageToDict(message, use_integers_for_enums=True)
    for resource in data["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return orjson.dumps(data)


def batch_route(body: bytes) -> list[Any]:
    return [validate_trace(raw) for raw in parse_envelope(body)]


def documents(checked: list[Any]) -> list[Any]:
    assert all(isinstance(c, ValidTrace) for c in checked)
    return [orjson.loads(c.document) for c in checked]


def workload(name: str, traces: list[Trace]) -> dict[str, Any]:
    protocol = OtlpProtocol("bench")
    pb_body = protocol.join([protocol.encode_trace(t) for t in traces])
    json_body = otlp_json(pb_body)
    batch_body = encode_batch(traces, datetime.now(UTC))
    assert batch_body is not None
    expected = documents(batch_route(batch_body))
    for body, encoding in ((pb_body, PROTOBUF), (json_body, JSON)):
        ingest = read_request(body, encoding)
        assert not ingest.rejected, ingest.rejected[:3]
        assert not ingest.spans
        assert documents(ingest.roots) == expected, f"{name}: {encoding} reads back differently"
    spans = sum(1 + len(t.spans) for t in traces)

    def parse() -> None:
        ExportTraceServiceRequest().ParseFromString(pb_body)

    return {
        "name": name,
        "spans": spans,
        "batch": per_span_us(lambda: batch_route(batch_body), spans),
        "protobuf": per_span_us(lambda: read_request(pb_body, PROTOBUF), spans),
        "json": per_span_us(lambda: read_request(json_body, JSON), spans),
        "upb": per_span_us(parse, spans),
    }


def section(results: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["name"],
            f"{r['spans']:,}",
            f"{r['batch']:.1f}",
            f"{r['protobuf']:.1f}",
            f"{r['json']:.1f}",
            f"{r['upb']:.1f}",
            f"{r['protobuf'] / r['batch']:.2f}x",
            f"{r['json'] / r['batch']:.2f}x",
        ]
        for r in results
    ]
    return markdown_section(
        "Collector: OTLP ingest cost per span (`benchmarks/bench_otlp_ingest.py`)",
        f"One request of {TRACES} traces per call, CPU time per span (best of {ROUNDS} rounds "
        "of 10 calls) of what the route does before the store: decode, map, group, validate. "
        "Checked first: the OTLP paths yield exactly the traces the batch route makes.",
        [
            "workload",
            "spans",
            "batch route (us)",
            "OTLP protobuf (us)",
            "OTLP JSON (us)",
            "upb parse only (us)",
            "protobuf / batch",
            "JSON / batch",
        ],
        rows,
        [
            "The decoder is pure Python (no `protobuf` dependency) and runs off the event "
            "loop; `upb parse only` is C and maps nothing, a floor for the decoding alone.",
        ],
    )


if __name__ == "__main__":
    run_workloads(__doc__ or "", workload, section)
