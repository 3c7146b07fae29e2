"""OTLP delivery rules against the fault-injecting server: where batches go, headers,
which answers are retried, Retry-After, 413 splits, partial success."""

from __future__ import annotations

import logging

import orjson
import pytest

from tests._delivery import (
    assert_sdk_request,
    check_413_split,
    check_not_retried,
    check_oversize_trace_fails_alone,
)
from tests._helpers import enqueue_all, traces
from tests._otlp import partial_success_body
from tests._proc import run_script
from tests._server import FaultServer, Reply, check_invariant
from tests.conftest import MakeTracer
from tracing import AsyncTracing, DeliveryError, Trace
from tracing._otlp import OtlpProtocol


async def test_post_path_and_headers(server: FaultServer, make_tracer: MakeTracer) -> None:
    """POST {endpoint}/v1/traces, protobuf, Bearer key, User-Agent, a UUID Idempotency-Key."""
    tracer = make_tracer(
        protocol="otlp", publishable_key="pk_1", headers={"x-langfuse-ingestion-version": "4"}
    )
    enqueue_all(tracer, traces(2))
    await tracer.flush()
    (request,) = server.requests
    assert_sdk_request(request, "/v1/traces", "application/x-protobuf", "pk_1")
    assert request.headers["x-langfuse-ingestion-version"] == "4"
    assert request.trace_ids == ["t-0", "t-1"]
    assert tracer.stats().sent == 2


@pytest.mark.parametrize("prefix", ["/api/public/otel", "/api/public/otel/", "/p"])
async def test_endpoint_path_prefix_is_kept(
    server: FaultServer, make_tracer: MakeTracer, prefix: str
) -> None:
    """A path prefix on the endpoint comes before /v1/traces (Langfuse's layout)."""
    tracer = make_tracer(protocol="otlp", endpoint=server.url + prefix)
    await tracer.send_batch(traces(1))
    assert server.requests[0].path == prefix.rstrip("/") + "/v1/traces"


async def test_headers_are_sent_in_json_mode_too(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """``headers`` go with every request of the JSON protocol as well."""
    tracer = make_tracer(headers={"X-Tenant": "acme"})
    await tracer.send_batch(traces(1))
    (request,) = server.requests
    assert request.path == "/api/traces/batch"
    assert request.headers["X-Tenant"] == "acme"
    assert request.headers["Content-Type"] == "application/json"


async def test_authorization_header_wins_over_publishable_key(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """An Authorization in ``headers`` (say Basic for Langfuse) replaces the Bearer key."""
    tracer = make_tracer(
        protocol="otlp", publishable_key="pk", headers={"authorization": "Basic cGs6c2s="}
    )
    await tracer.send_batch(traces(1))
    headers = server.requests[0].headers
    assert headers.getall("Authorization") == ["Basic cGs6c2s="]


async def test_otel_endpoint_and_headers_from_env(
    server: FaultServer, make_tracer: MakeTracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT comes before TRACING_ENDPOINT; OTEL_EXPORTER_OTLP_HEADERS
    is URL-decoded and merged under ``headers``, which wins (whatever the case)."""
    monkeypatch.setenv("TRACING_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url + "/otel")
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20abc%3D, x-a = 1 ,X-B=from-env"
    )
    tracer = AsyncTracing(protocol="otlp", flush_interval=0, headers={"x-b": "explicit"})
    try:
        await tracer.send_batch(traces(1))
    finally:
        await tracer.shutdown()
    (request,) = server.requests
    assert request.path == "/otel/v1/traces"
    assert request.headers["Authorization"] == "Basic abc="
    assert request.headers["x-a"] == "1"
    assert request.headers.getall("X-B") == ["explicit"]


async def test_otel_variables_are_ignored_in_json_mode(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With protocol="tracing" the OTEL_* variables are not read."""
    monkeypatch.setenv("TRACING_ENDPOINT", server.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-otel=1")
    tracer = AsyncTracing(flush_interval=0)
    try:
        await tracer.send_batch(traces(1))
    finally:
        await tracer.shutdown()
    (request,) = server.requests
    assert request.path == "/api/traces/batch"
    assert "x-otel" not in request.headers


async def test_explicit_endpoint_wins_over_otel_env(
    server: FaultServer, make_tracer: MakeTracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``endpoint`` argument beats OTEL_EXPORTER_OTLP_ENDPOINT."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    tracer = make_tracer(protocol="otlp")  # endpoint=server.url
    result = await tracer.send_batch(traces(1))
    assert result.successful == 1


async def test_gzip_header(server: FaultServer, make_tracer: MakeTracer) -> None:
    """compression="gzip" sends Content-Encoding: gzip with the protobuf body."""
    tracer = make_tracer(protocol="otlp", compression="gzip")
    await tracer.send_batch(traces(3))
    (request,) = server.requests
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.trace_ids == ["t-0", "t-1", "t-2"]


RETRIED = [
    Reply(429),
    Reply(502),
    Reply(503),
    Reply(504),
    Reply(drop=True),
    Reply(delay=30),  # past the client's timeout
]


@pytest.mark.parametrize(
    "fault", RETRIED, ids=lambda r: "drop" if r.drop else "delay" if r.delay else str(r.status)
)
async def test_retryable_answers_are_retried(
    server: FaultServer, make_tracer: MakeTracer, fault: Reply
) -> None:
    """429, 502, 503, 504, dropped connections and timeouts are retried, with the same body."""
    tracer = make_tracer(protocol="otlp", max_retries=3, timeout=0.5 if fault.delay else 5.0)
    server.script(fault, fault)
    enqueue_all(tracer, traces(2))
    await tracer.flush()
    stats = tracer.stats()
    assert len(server.requests) == 3
    assert len({r.raw for r in server.requests}) == 1
    assert len({r.headers["Idempotency-Key"] for r in server.requests}) == 1
    assert server.accepted_ids() == ["t-0", "t-1"]
    assert (stats.retries, stats.sent, stats.failed, stats.batches) == (2, 2, 0, 1)
    check_invariant(stats)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 415, 422, 500, 501, 505])
async def test_other_statuses_are_not_retried(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """Every other status (408 and 500 included, unlike the JSON protocol) fails at once,
    reported with the message of the server's google.rpc.Status."""
    message = await check_not_retried(
        server, make_tracer, caplog, status, protocol="otlp", max_retries=3
    )
    assert message.startswith(f"HTTP {status}: scripted")  # 404/405 add a hint after it


async def test_retries_run_out_then_requeued(server: FaultServer, make_tracer: MakeTracer) -> None:
    """After the last retry the batch goes back to the queue; the next flush sends it."""
    tracer = make_tracer(protocol="otlp", max_retries=1)
    server.respond_with(503, times=2)
    enqueue_all(tracer, traces(2))
    with pytest.raises(DeliveryError) as info:
        await tracer.flush()
    assert info.value.requeued == 2
    assert tracer.stats().queue_size == 2
    await tracer.flush()
    assert server.accepted_ids() == ["t-0", "t-1"]
    first, _, last = server.requests
    assert first.raw == last.raw  # the same ids and bytes after the requeue
    check_invariant(tracer.stats())


async def test_retry_after_is_honoured_and_pauses_every_batch(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A 429 with Retry-After: 1 holds every request, of every batch, about a second."""
    tracer = make_tracer(protocol="otlp", max_batch_size=1, max_concurrency=1, retry_backoff_max=5)
    server.respond_with(429, {"Retry-After": "1"})
    result = await tracer.send_batch(traces(3))
    assert result.successful == 3
    first, *rest = server.requests
    assert len(rest) == 3
    assert all(r.time - first.time >= 0.9 for r in rest)


async def test_413_splits_until_it_fits(server: FaultServer, make_tracer: MakeTracer) -> None:
    """413 splits the batch in halves until each part is accepted; each part is valid OTLP."""
    items = [Trace(f"t{i}", id=f"t-{i}", input="x" * 200) for i in range(8)]
    protocol = OtlpProtocol("unknown_service")
    room = len(protocol.join([protocol.encode_trace(t) for t in items[:2]]))
    await check_413_split(server, make_tracer(protocol="otlp", max_batch_size=8), items, room)


async def test_413_single_trace_is_failed(server: FaultServer, make_tracer: MakeTracer) -> None:
    """A single trace still too large fails alone; the rest are delivered."""
    messages = await check_oversize_trace_fails_alone(server, make_tracer, protocol="otlp")
    assert messages == ["HTTP 413: the trace alone is larger than the server accepts"]


async def test_partial_success_counts_sent_and_logs(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """A 200 with partial_success: every trace counts as sent (not retried, not failed), and
    the server's message is logged."""
    reported: list[object] = []
    tracer = make_tracer(protocol="otlp", on_error=lambda exc, ts: reported.append(exc))
    server.script(Reply(200, body=partial_success_body(2, "span name too long")))
    enqueue_all(tracer, traces(3))
    with caplog.at_level(logging.WARNING, logger="tracing"):
        await tracer.flush()
    stats = tracer.stats()
    assert len(server.requests) == 1
    assert (stats.sent, stats.failed, stats.retries) == (3, 0, 0)
    assert reported == []
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "rejected 2 span(s)" in line
    assert "span name too long" in line
    check_invariant(stats)


async def test_partial_success_in_send_batch_results(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """send_batch() reports partially accepted traces as successful, with the message."""
    tracer = make_tracer(protocol="otlp")
    server.script(Reply(200, body=partial_success_body(1, "bad attribute")))
    result = await tracer.send_batch(traces(2))
    assert (result.successful, result.failed) == (2, 0)
    assert all("bad attribute" in r.message for r in result.results)
    assert {r.status for r in result.results} == {200}


async def test_partial_success_as_json(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """A JSON answer to a protobuf request (Langfuse does this) is read too: int64 as a
    string, lowerCamelCase keys."""
    tracer = make_tracer(protocol="otlp")
    body = orjson.dumps({"partialSuccess": {"rejectedSpans": "4", "errorMessage": "quota"}})
    server.script(Reply(200, body=body, content_type="application/json"))
    with caplog.at_level(logging.WARNING, logger="tracing"):
        result = await tracer.send_batch(traces(1))
    assert result.successful == 1
    assert any("rejected 4 span(s)" in r.getMessage() for r in caplog.records)


async def test_partial_success_warning_only(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """rejected_spans 0 with a message is a warning: logged, everything sent."""
    tracer = make_tracer(protocol="otlp")
    server.script(Reply(200, body=partial_success_body(0, "deprecated attribute")))
    with caplog.at_level(logging.WARNING, logger="tracing"):
        await tracer.send_batch(traces(2))
    assert any("deprecated attribute" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "body",
    [b"", b"\x0a\x00", b"\xff\xff\xff", b"{}", b"not json or protobuf {"],
    ids=["empty", "empty-partial", "garbage", "json-empty", "text"],
)
async def test_other_2xx_bodies_accept_everything(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    """An empty, empty-partial or unreadable 2xx body is a full success, with no warning."""
    tracer = make_tracer(protocol="otlp")
    server.script(Reply(200, body=body))
    with caplog.at_level(logging.WARNING, logger="tracing"):
        result = await tracer.send_batch(traces(2))
    assert result.successful == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_shutdown_delivers_in_otlp_mode(server: FaultServer) -> None:
    """shutdown() drains the queue through the OTLP protocol as well."""
    tracer = AsyncTracing(endpoint=server.url, protocol="otlp", flush_interval=0)
    async with tracer:
        for i in range(30):
            async with tracer.trace(f"job-{i}", id=f"job-{i}") as trace:
                with trace.span("step"):
                    pass
    stats = tracer.stats()
    assert stats.sent == 30
    assert sorted(server.accepted_ids()) == sorted(f"job-{i}" for i in range(30))
    check_invariant(stats)


@pytest.mark.parametrize("mode", ["asyncio_run", "no_loop"])
async def test_exit_delivery_in_otlp_mode(server: FaultServer, mode: str) -> None:
    """A process that never calls shutdown() delivers its queue at exit over OTLP too."""
    code, out, err = await run_script(
        "no_shutdown.py", server.url, mode, "4", env={"TEST_PROTOCOL": "otlp"}
    )
    assert code == 0, err
    assert [r.path for r in server.requests] == ["/v1/traces"]
    assert sorted(server.accepted_ids()) == sorted(out.split())
    assert len(server.accepted_ids()) == 4
    assert "Traceback" not in err
