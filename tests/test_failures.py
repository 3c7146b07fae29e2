"""How failures are told: traces that cannot be encoded, the messages of failed answers
and of transport errors (``_exporter``), against the scripted server."""

from __future__ import annotations

import pytest

from tests._helpers import enqueue_all, traces
from tests._server import FaultServer, Reply, check_invariant
from tests.conftest import MakeTracer
from tracing import BatchError, DeliveryError, Trace


def _circular() -> list[object]:
    loop: list[object] = []
    loop.append(loop)
    return loop


async def test_a_trace_that_cannot_be_encoded_fails_alone(
    server: FaultServer, make_tracer: MakeTracer, caplog: pytest.LogCaptureFixture
) -> None:
    """A trace no JSON encoder can write is failed and reported, with no status, as never
    sent (not as rejected by the collector, which never saw it); the others of its batch
    go out in one request."""
    reported: list[tuple[str, list[str]]] = []
    tracer = make_tracer(on_error=lambda exc, ts: reported.append((str(exc), [t.id for t in ts])))
    enqueue_all(tracer, [*traces(2), Trace("bad", id="bad", input=_circular()), *traces(1, "u")])
    await tracer.flush()
    assert [r.trace_ids for r in server.requests] == [["t-0", "t-1", "u-0"]]
    stats = tracer.stats()
    assert (stats.sent, stats.failed, stats.retries) == (3, 1, 0)
    ((message, ids),) = reported
    assert ids == ["bad"]
    assert "trace bad cannot be encoded as JSON" in message
    assert "tracing failed to deliver 1 trace(s) (never sent: trace bad cannot" in caplog.text
    assert "rejected by the collector" not in caplog.text
    check_invariant(stats)


async def test_send_batch_of_unencodable_traces_sends_nothing(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """send_batch() of traces that cannot be encoded answers each as failed, status None,
    without a request; mixed in, they fail alone, in input order."""
    tracer = make_tracer()
    bad = [Trace("bad", id=f"bad-{i}", input=_circular()) for i in range(2)]
    result = await tracer.send_batch(bad)
    assert server.requests == []
    assert [(r.id, r.success, r.status) for r in result.results] == [
        ("bad-0", False, None),
        ("bad-1", False, None),
    ]
    assert "cannot be encoded" in result.results[0].message
    mixed = await tracer.send_batch([bad[0], *traces(2)])
    assert [(r.id, r.success) for r in mixed.results] == [
        ("bad-0", False),
        ("t-0", True),
        ("t-1", True),
    ]


async def test_an_unencodable_trace_leaves_the_others_failure_named(
    make_tracer: MakeTracer,
) -> None:
    """When a batch holds a trace that cannot be encoded and the others get no answer,
    flush() raises with the transport failure as the cause, not a bare "no answer"."""
    tracer = make_tracer(endpoint="http://127.0.0.1:9", max_retries=0)
    enqueue_all(tracer, [Trace("bad", id="bad", input=_circular()), *traces(2)])
    with pytest.raises(DeliveryError) as info:
        await tracer.flush()
    assert info.value.requeued == 2
    cause = info.value.__cause__
    assert str(cause).startswith("ClientConnectorError: Cannot connect to host"), cause
    assert (tracer.stats().failed, tracer.stats().queue_size) == (1, 2)


async def test_error_message_quotes_the_start_of_the_answer(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """A failed answer's message is ``HTTP <status>: `` and the start of a plain-text body,
    whitespace collapsed, cut at 120 characters; an empty body adds nothing."""
    reported: list[str] = []
    tracer = make_tracer(on_error=lambda exc, ts: reported.append(str(exc)), max_batch_size=1)
    body = b"  bad\n\n  request:  " + b"z" * 300
    server.script(Reply(400, body=body), Reply(422, body=b""))
    enqueue_all(tracer, traces(2))
    await tracer.flush()
    assert reported == ["HTTP 400: bad request: " + "z" * 104 + "...", "HTTP 422"]


async def test_transport_failures_name_their_cause(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """No answer in time and a dropped connection each say so in the error."""
    impatient = make_tracer(max_retries=0, timeout=0.5)  # short: the fault is the timeout
    server.script(Reply(hang=True))
    with pytest.raises(BatchError) as timed_out:
        await impatient.send_batch(traces(1))
    (message,) = timed_out.value.errors
    assert message == "t-0: not delivered after 1 attempt(s): no answer within 0.5s"
    patient = make_tracer(max_retries=0)
    server.script(Reply(drop=True))
    with pytest.raises(BatchError) as dropped:
        await patient.send_batch(traces(1, "d"))
    (message,) = dropped.value.errors
    assert message.startswith("d-0: not delivered after 1 attempt(s): ")
    assert "ServerDisconnectedError" in message or "ClientOSError" in message


@pytest.mark.parametrize("status", [300, 404, 405])
async def test_a_non_2xx_answer_fails_the_traces_it_names(
    server: FaultServer, make_tracer: MakeTracer, status: int
) -> None:
    """A 300 (redirects are not followed) is no success; a 404 or 405 also names the URL
    that was posted to, since a wrong path prefix is the usual cause."""
    tracer = make_tracer(max_retries=0)
    server.respond_with(status)
    result = await tracer.send_batch(traces(2))
    assert (result.successful, result.failed) == (0, 2)
    assert [(r.id, r.success, r.status) for r in result.results] == [
        ("t-0", False, status),
        ("t-1", False, status),
    ]
    hint = f"(POST {server.url}/api/traces/batch: is the endpoint, path prefix included, right?)"
    assert result.results[0].message.startswith(f"HTTP {status}")
    assert (hint in result.results[0].message) == (status != 300)
