"""One batch to one POST, against a real scripted server (``_exporter``)."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

import tracing
from tests._delivery import (
    assert_sdk_request,
    check_413_split,
    check_not_retried,
    check_oversize_trace_fails_alone,
)
from tests._helpers import enqueue_all, traces
from tests._server import FaultServer, Recorded, Reply, check_invariant
from tests.conftest import MakeTracer
from tracing import AsyncTracing, DeliveryError, TracingError


async def test_post_carries_content_type_key_user_agent_and_idempotency_key(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """POST carries JSON content type, Bearer key, versioned User-Agent and a UUID key."""
    tracer = make_tracer(publishable_key="pk_live_1")
    enqueue_all(tracer, traces(1))
    await tracer.flush()
    (request,) = server.requests
    assert_sdk_request(request, "/api/traces/batch", "application/json", "pk_live_1")


async def test_no_authorization_without_key(server: FaultServer, make_tracer: MakeTracer) -> None:
    """Without a key no Authorization header is sent."""
    tracer = make_tracer()
    enqueue_all(tracer, traces(1))
    await tracer.flush()
    assert "Authorization" not in server.requests[0].headers


async def test_key_from_env_is_sent(
    server: FaultServer, make_tracer: MakeTracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TRACING_PUBLISHABLE_KEY is sent as the Bearer token; TRACING_ENDPOINT is used."""
    monkeypatch.setenv("TRACING_ENDPOINT", server.url + "/env")
    monkeypatch.setenv("TRACING_PUBLISHABLE_KEY", "pk_from_env")
    tracer = AsyncTracing(flush_interval=0)
    try:
        await tracer.send_batch(traces(1))
    finally:
        await tracer.shutdown()
    assert server.requests[0].path == "/env/api/traces/batch"
    assert server.requests[0].headers["Authorization"] == "Bearer pk_from_env"


async def test_gzip_body_is_valid(server: FaultServer, make_tracer: MakeTracer) -> None:
    """compression="gzip" sends Content-Encoding: gzip and a body that gunzips to the batch."""
    tracer = make_tracer(compression="gzip")
    enqueue_all(tracer, traces(3))
    await tracer.flush()
    (request,) = server.requests
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.raw[:2] == b"\x1f\x8b"
    data = json.loads(gzip.decompress(request.raw))
    assert [t["id"] for t in data["traces"]] == ["t-0", "t-1", "t-2"]
    assert tracer.stats().sent == 3


@pytest.mark.parametrize("suffix", ["", "/", "/prefix", "/prefix/", "/a/b/"])
async def test_endpoint_prefix_and_trailing_slash(
    server: FaultServer, make_tracer: MakeTracer, suffix: str
) -> None:
    """A trailing slash is harmless and a path prefix is kept in the POST path."""
    tracer = make_tracer(endpoint=server.url + suffix)
    enqueue_all(tracer, traces(1))
    await tracer.flush()
    assert server.requests[0].path == suffix.rstrip("/") + "/api/traces/batch"


async def test_body_is_the_wire_envelope_with_nested_spans(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """The body is {sentAt, traces} with camelCase keys, Z times and nested spans."""
    tracer = make_tracer()
    async with tracer.trace("summarize", input="in", metadata={"m": 1}, tags=["a"]) as trace:
        with trace.span("outer") as outer, trace.span("inner") as inner:
            inner.end(llm_usage=tracing.LlmUsage("gpt-4o", "openai", 1, 2))
    await tracer.flush()
    body = server.requests[0].body
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["sentAt"])
    (wire,) = body["traces"]
    assert wire["name"] == "summarize"
    assert (wire["input"], wire["metadata"], wire["tags"], wire["status"]) == (
        "in",
        {"m": 1},
        ["a"],
        "ok",
    )
    assert re.fullmatch(r".*\.\d{6}Z", wire["startTime"])
    assert re.fullmatch(r".*\.\d{6}Z", wire["endTime"])
    assert isinstance(wire["duration"], float)
    spans = {s["name"]: s for s in wire["spans"]}
    assert spans["outer"]["parentId"] is None
    assert spans["inner"]["parentId"] == outer.id
    assert spans["inner"]["llmUsage"] == {
        "model": "gpt-4o",
        "provider": "openai",
        "promptTokens": 1,
        "completionTokens": 2,
        "apiCallsCount": 1,
    }


async def test_idempotency_key_stable_across_retries_new_per_batch(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Retries of a batch reuse its Idempotency-Key; the next batch gets a new one."""
    tracer = make_tracer(max_batch_size=2, max_concurrency=1, max_retries=2)
    server.respond_with(503, times=2)
    enqueue_all(tracer, traces(4))
    await tracer.flush()
    keys = [r.headers["Idempotency-Key"] for r in server.requests]
    ids = [r.trace_ids for r in server.requests]
    assert ids == [["t-0", "t-1"]] * 3 + [["t-2", "t-3"]]
    assert keys[0] == keys[1] == keys[2]
    assert keys[3] != keys[0]
    assert tracer.stats().retries == 2


async def test_idempotency_keys_are_distinct_version_4_uuids(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Without a spool each batch's key is a random RFC 4122 version-4 UUID, in its
    canonical text, never repeated."""
    tracer = make_tracer(max_batch_size=1, max_concurrency=1)
    enqueue_all(tracer, traces(40))
    await tracer.flush()
    keys = [r.headers["Idempotency-Key"] for r in server.requests]
    assert len(keys) == 40
    assert len(set(keys)) == 40
    for key in keys:
        parsed = uuid.UUID(key)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, key)


async def test_retries_and_giving_up_log_only_on_the_tracing_logger(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch retried and then given up logs on the ``tracing`` logger alone: the retry
    library's own "Backing off" and "Giving up" lines (the latter at ERROR) stay off."""
    tracer = make_tracer(max_retries=2)
    server.respond_with(503, times=3)
    enqueue_all(tracer, traces(1))
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError):
        await tracer.flush()
    assert len(server.requests) == 3  # the state: two retries, then given up
    assert any(r.name == "tracing" for r in caplog.records)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("backoff")] == []


RETRYABLE_FAULTS: list[Reply] = [
    Reply(408),
    Reply(429),
    Reply(500),
    Reply(502),
    Reply(503),
    Reply(504),
    Reply(599),
    Reply(drop=True),
]


@pytest.mark.parametrize(
    "fault", RETRYABLE_FAULTS, ids=lambda r: "drop" if r.drop else str(r.status)
)
async def test_retryable_failures_are_retried_exactly(
    server: FaultServer, make_tracer: MakeTracer, fault: Reply
) -> None:
    """408, 429, 5xx and dropped connections are retried; retries counted exactly."""
    tracer = make_tracer(max_retries=3)
    server.script(fault, fault)
    enqueue_all(tracer, traces(2))
    await tracer.flush()
    stats = tracer.stats()
    assert len(server.requests) == 3
    assert server.accepted_ids() == ["t-0", "t-1"]
    assert (stats.retries, stats.sent, stats.failed, stats.batches) == (2, 2, 0, 1)
    check_invariant(stats)


async def test_no_answer_within_timeout_is_retried(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """An attempt the server never answers times out and is retried with the same key."""
    # The fault is the client's timeout, so it is short here. On a loaded machine another
    # attempt may time out too (even before it reaches the server), so the counts are
    # read from what happened: every request is an attempt, and retries count them.
    tracer = make_tracer(max_retries=4, timeout=0.5)
    server.script(Reply(hang=True), Reply(hang=True))
    enqueue_all(tracer, traces(2))
    await tracer.flush()
    stats = tracer.stats()
    requests = server.requests
    assert 3 <= len(requests) <= stats.retries + 1
    assert [r.status for r in requests[:2]] == [None, None]  # never answered
    assert len({r.headers["Idempotency-Key"] for r in requests}) == 1
    assert set(server.accepted_ids()) == {"t-0", "t-1"}
    assert (stats.sent, stats.failed, stats.batches) == (2, 0, 1)
    check_invariant(stats)


@pytest.mark.parametrize("max_retries", [0, 1, 4])
async def test_attempts_are_one_plus_max_retries(
    server: FaultServer, make_tracer: MakeTracer, max_retries: int
) -> None:
    """A batch gets exactly 1 + max_retries attempts, then flush() raises DeliveryError."""
    tracer = make_tracer(max_retries=max_retries)
    server.default = Reply(503)
    enqueue_all(tracer, traces(3))
    with pytest.raises(DeliveryError):
        await tracer.flush()
    assert len(server.requests) == 1 + max_retries
    assert tracer.stats().retries == max_retries


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 451])
async def test_other_4xx_not_retried_and_reported(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """Other 4xx: one attempt, traces counted failed, logged and passed to on_error."""
    message = await check_not_retried(server, make_tracer, caplog, status)
    assert str(status) in message


async def test_413_splits_in_halves_until_it_fits(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """413 splits the batch in halves, recursively, until each part is accepted."""
    # Room for two traces per request (one trace is about 340 bytes on the wire).
    await check_413_split(server, make_tracer(max_batch_size=8), traces(8), 700)


async def test_413_single_oversize_trace_is_failed(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A single trace still too large is failed and reported; the rest are delivered."""
    messages = await check_oversize_trace_fails_alone(server, make_tracer)
    assert messages == ["HTTP 413: the trace alone is larger than the server accepts"]


async def test_per_trace_rejection_counts_failed_not_retried(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A result with success false fails that trace alone, without a retry."""
    reported: list[tuple[str, list[str]]] = []
    tracer = make_tracer(on_error=lambda exc, ts: reported.append((str(exc), [t.id for t in ts])))
    server.reject = {"t-1": "name too long"}
    enqueue_all(tracer, traces(3))
    await tracer.flush()
    stats = tracer.stats()
    assert len(server.requests) == 1
    assert (stats.sent, stats.failed, stats.retries) == (2, 1, 0)
    assert reported == [("name too long", ["t-1"])]


async def test_200_without_results_accepts_everything(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A 200 without ``results`` means every trace was accepted."""
    tracer = make_tracer()
    server.respond_with(200, results=False)
    enqueue_all(tracer, traces(4))
    await tracer.flush()
    assert tracer.stats().sent == 4


async def test_retries_wait_at_least_half_their_exponential_delay(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Retries back off with "equal jitter": the k-th waits at least half of
    ``retry_backoff * 2**k`` (capped), never a random share of it that may be near zero.
    Lower bounds only: a loaded machine makes the waits longer, never shorter."""
    tracer = make_tracer(max_retries=4, retry_backoff=0.1, retry_backoff_max=1.0)
    server.respond_with(503, times=5)
    enqueue_all(tracer, traces(1))
    with pytest.raises(DeliveryError):
        await tracer.flush()
    times = [r.time for r in server.requests]
    assert len(times) == 5  # the state: four retries
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    for k, gap in enumerate(gaps):
        assert gap >= min(1.0, 0.1 * 2**k) / 2 - 0.005, (k, gaps)


async def test_retry_after_seconds_is_honoured(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A 429 with Retry-After: 1 delays the retry by about a second, not retry_backoff."""
    tracer = make_tracer(retry_backoff_max=5)
    server.respond_with(429, {"Retry-After": "1"})
    enqueue_all(tracer, traces(1))
    await tracer.flush()
    first, second = server.requests
    assert second.time - first.time >= 0.9
    assert tracer.stats().retries == 1


async def test_retry_after_http_date_is_honoured(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A 503 with an HTTP-date Retry-After waits until that date."""
    tracer = make_tracer(retry_backoff_max=10)

    def answer(record: Recorded) -> Reply | None:
        if len(server.requests) > 1:
            return None
        # Made as the server answers: 3 s ahead, cut to whole seconds, leaves 2 s or more.
        when = datetime.now(UTC) + timedelta(seconds=3)
        return Reply(503, {"Retry-After": format_datetime(when, usegmt=True)})

    server.reply_for = answer
    enqueue_all(tracer, traces(1))
    await tracer.flush()
    first, second = server.requests
    assert first.status == 503
    assert second.time - first.time >= 1.5  # retry_backoff alone waits 1 ms
    assert tracer.stats().sent == 1


async def test_a_retry_after_shorter_than_the_backoff_is_honoured(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Retry-After: 0 retries at once, instead of the 10-20 s the backoff would wait."""
    tracer = make_tracer(retry_backoff=20, retry_backoff_max=60)
    server.respond_with(429, {"Retry-After": "0"})
    enqueue_all(tracer, traces(1))
    await asyncio.wait_for(tracer.flush(), timeout=8)
    assert [r.status for r in server.requests] == [429, 200]
    assert tracer.stats().sent == 1


async def test_retry_after_is_capped_by_retry_backoff_max(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A Retry-After of an hour waits only retry_backoff_max."""
    tracer = make_tracer(retry_backoff_max=0.1)
    server.respond_with(429, {"Retry-After": "3600"})
    enqueue_all(tracer, traces(1))
    await asyncio.wait_for(tracer.flush(), timeout=10)
    first, second = server.requests
    assert second.time - first.time < 10
    assert tracer.stats().sent == 1


async def test_retry_after_pauses_other_batches(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """After a Retry-After, no request of any batch goes out until the pause passes."""
    tracer = make_tracer(max_batch_size=1, max_concurrency=1, retry_backoff_max=5)
    server.respond_with(429, {"Retry-After": "1"})
    result = await tracer.send_batch(traces(3))
    assert result.successful == 3
    first, *rest = server.requests
    assert len(rest) == 3
    assert all(r.time - first.time >= 0.9 for r in rest)


async def test_connection_refused_raises_delivery_error(make_tracer: MakeTracer) -> None:
    """With nothing listening, flush() raises DeliveryError caused by the transport error."""
    tracer = make_tracer(endpoint="http://127.0.0.1:9", max_retries=1)
    enqueue_all(tracer, traces(2))
    with pytest.raises(DeliveryError) as info:
        await tracer.flush()
    assert info.value.requeued == 2
    assert isinstance(info.value.__cause__, TracingError)
    assert info.value.__cause__.__cause__ is not None
    assert tracer.stats().queue_size == 2


async def test_retry_backoff_sets_the_first_delay(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """With retry_backoff=0.4 the first retry waits at least half of it (equal jitter)."""
    tracer = make_tracer(retry_backoff=0.4, retry_backoff_max=1)
    server.respond_with(503)
    enqueue_all(tracer, traces(1))
    await tracer.flush()
    first, second = server.requests
    assert second.time - first.time >= 0.2
    assert tracer.stats().retries == 1


class _Costly:
    """An input value the JSON encoder must stringify; counts how often it is encoded."""

    calls = 0

    def __str__(self) -> str:
        _Costly.calls += 1
        return "costly"


async def test_each_trace_serialised_once_across_retries_and_requeues(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Nothing is encoded on the hot path, and a trace is encoded once however often sent."""
    _Costly.calls = 0
    tracer = make_tracer(max_retries=1)
    server.respond_with(503, times=2)  # fails the first flush after its retry
    async with tracer.trace("t", input=_Costly()):
        pass
    assert _Costly.calls == 0
    with pytest.raises(DeliveryError):
        await tracer.flush()
    await tracer.flush()
    assert len(server.requests) == 3
    assert server.requests[-1].traces[0]["input"] == "costly"
    assert _Costly.calls == 1


async def test_more_than_ten_requests_at_once(server: FaultServer, make_tracer: MakeTracer) -> None:
    """max_concurrency above ten is honoured: the connection pool is at least that big."""
    tracer = make_tracer(max_batch_size=1, max_concurrency=12)
    server.gate = asyncio.Event()
    sending = asyncio.create_task(tracer.send_batch(traces(14)))
    await server.wait_until(lambda: server.in_flight >= 12)
    server.gate.set()
    assert (await sending).successful == 14
    assert server.max_in_flight == 12
