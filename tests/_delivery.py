"""Delivery checks both protocols' tests run (``test_exporter`` for the JSON protocol,
``test_otlp_delivery`` for OTLP): the headers of a request, and a 413 splitting a batch
or failing the one trace that is too large alone, and a status that is not retried."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence

import pytest

import tracing
from tests._helpers import enqueue_all, traces
from tests._server import FaultServer, Recorded, check_invariant
from tracing import AsyncTracing, Trace

__all__ = [
    "assert_sdk_request",
    "check_413_split",
    "check_not_retried",
    "check_oversize_trace_fails_alone",
]


def assert_sdk_request(request: Recorded, path: str, content_type: str, key: str) -> None:
    """The request went to ``path`` with ``content_type``, ``key`` as a Bearer token, the
    versioned User-Agent, a UUID Idempotency-Key and no Content-Encoding."""
    assert request.path == path
    assert request.headers["Content-Type"] == content_type
    assert request.headers["Authorization"] == f"Bearer {key}"
    assert request.headers["User-Agent"] == f"tracing-python/{tracing.__version__}"
    assert uuid.UUID(request.headers["Idempotency-Key"])
    assert "Content-Encoding" not in request.headers


async def check_413_split(
    server: FaultServer, tracer: AsyncTracing, items: Sequence[Trace], max_body: int
) -> None:
    """With room for two of the 8 ``items`` per request, a batch of all 8 is split in
    halves until each part is accepted: 8 and 4 refused, four parts of 2 delivered."""
    enqueue_all(tracer, list(items))
    server.max_body = max_body
    await tracer.flush()
    stats = tracer.stats()
    assert sorted(server.accepted_ids()) == sorted(t.id for t in items)
    assert all(len(r.raw) <= max_body for r in server.requests if r.status == 200)
    sizes = sorted((len(r.trace_ids), r.status) for r in server.requests)
    assert sizes == [(2, 200)] * 4 + [(4, 413)] * 2 + [(8, 413)]
    assert (stats.sent, stats.failed, stats.retries) == (8, 0, 0)


async def check_oversize_trace_fails_alone(
    server: FaultServer, make_tracer: Callable[..., AsyncTracing], **options: object
) -> list[str]:
    """A trace too large even alone among three that fit: it is failed and reported, the
    others are delivered. Returns the messages ``on_error`` got."""
    reported: list[str] = []
    messages: list[str] = []

    def on_error(exc: Exception, failed: Sequence[Trace]) -> None:
        reported.extend(t.id for t in failed)
        messages.append(str(exc))

    tracer = make_tracer(on_error=on_error, **options)
    small = traces(3)
    enqueue_all(tracer, [small[0], Trace("big", id="big", input="x" * 5000), *small[1:]])
    server.max_body = 2000
    await tracer.flush()
    stats = tracer.stats()
    assert sorted(server.accepted_ids()) == ["t-0", "t-1", "t-2"]
    assert reported == ["big"]
    assert (stats.sent, stats.failed, stats.retries) == (3, 1, 0)
    check_invariant(stats)
    return messages


async def check_not_retried(
    server: FaultServer,
    make_tracer: Callable[..., AsyncTracing],
    caplog: pytest.LogCaptureFixture,
    status: int,
    **options: object,
) -> str:
    """An answer ``status`` to a batch of three: one attempt, the traces counted failed,
    logged with their ids and passed to ``on_error`` together. Returns its message."""
    reported: list[tuple[str, list[str]]] = []
    tracer = make_tracer(
        on_error=lambda exc, ts: reported.append((str(exc), [t.id for t in ts])), **options
    )
    server.respond_with(status)
    enqueue_all(tracer, traces(3))
    with caplog.at_level(logging.WARNING, logger="tracing"):
        await tracer.flush()  # rejected for good: reported, not raised
    stats = tracer.stats()
    assert len(server.requests) == 1
    assert (stats.failed, stats.sent, stats.retries, stats.queue_size) == (3, 0, 0, 0)
    ((message, ids),) = reported
    assert ids == ["t-0", "t-1", "t-2"]
    assert any("t-0" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    check_invariant(stats)
    return message
