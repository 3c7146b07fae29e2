"""The last-chance delivery at interpreter exit (``_atexit``), in real subprocesses."""

from __future__ import annotations

import asyncio

import pytest

from tests._helpers import PATIENCE
from tests._proc import run_script
from tests._server import FaultServer, Reply


@pytest.mark.parametrize(
    "mode", ["asyncio_run", "closed_loop", "no_loop", "threads", "dropped", "loop_thread"]
)
async def test_process_without_shutdown_still_delivers(server: FaultServer, mode: str) -> None:
    """A process that never calls shutdown() delivers what is queued at exit."""
    code, out, err = await run_script("no_shutdown.py", server.url, mode, "5")
    assert code == 0, err
    expected = out.split()
    assert len(expected) == 5
    assert sorted(server.accepted_ids()) == sorted(expected)
    assert "Traceback" not in err


async def test_exit_with_the_loop_running_in_a_thread_waits_for_its_batch(
    server: FaultServer,
) -> None:
    """At exit, a batch in flight on the tracer's loop (still running in a daemon thread)
    is waited for on that loop, not sent again from a fresh one: one request, each id once."""
    server.default = Reply(delay=1.0)
    code, out, err = await run_script("no_shutdown.py", server.url, "loop_thread_in_flight", "4")
    assert code == 0, err
    assert len(server.batch_requests()) == 1
    assert sorted(server.accepted_ids()) == sorted(out.split())
    assert len(out.split()) == 4
    assert "Traceback" not in err, err
    assert "on_error" not in err, err


async def test_exit_with_the_loop_running_in_a_thread_is_bounded(server: FaultServer) -> None:
    """Against a server that never answers, the shutdown() run on the tracer's loop thread
    at exit ends within ``timeout`` and reports the traces it could not deliver."""
    server.default = Reply(delay=120)
    code, _, err = await run_script("no_shutdown.py", server.url, "loop_thread", "3", "1.0")
    assert code == 0, err
    assert server.accepted_ids() == []
    assert "on_error: exit-0 exit-1 exit-2" in err, err
    assert "did not run its shutdown" not in err, err


async def test_exit_with_the_loop_thread_blocked_gives_up_and_says_so(
    server: FaultServer,
) -> None:
    """The tracer's loop thread stuck in a blocking call at exit: the exit waits its
    ``timeout`` plus a second for the shutdown it asked that loop for, then warns and ends."""
    code, _, err = await run_script("no_shutdown.py", server.url, "loop_thread_blocked", "3", "1.0")
    assert code == 0, err
    assert server.requests == []
    warning = "tracing: the tracer's event loop did not run its shutdown at exit"
    assert warning in err.splitlines(), err  # the whole line: logging's last resort


async def test_exit_attempt_is_bounded_and_logged(server: FaultServer) -> None:
    """Against a server that never answers, exit waits about ``timeout``, once, and logs."""
    server.default = Reply(delay=120)
    loop = asyncio.get_running_loop()
    started = loop.time()
    code, _, err = await run_script("no_shutdown.py", server.url, "asyncio_run", "3", "1.0")
    elapsed = loop.time() - started
    assert code == 0, err
    assert elapsed < 60 * PATIENCE  # timeout=1.0 against a 120 s stall; start-up included
    assert len(server.batch_requests()) == 1  # one attempt, no retries
    assert server.accepted_ids() == []
    assert "failed to deliver 3 trace(s)" in err
    assert "on_error: exit-0 exit-1 exit-2" in err
    assert "Traceback" not in err


async def test_exit_with_failing_server_makes_one_attempt(server: FaultServer) -> None:
    """A 503 at exit is not retried: one request, the traces logged as failed."""
    server.default = Reply(503)
    code, _, err = await run_script("no_shutdown.py", server.url, "closed_loop", "2")
    assert code == 0, err
    assert len(server.batch_requests()) == 1
    # Failed as the answer left them, not requeued for a later round there will not be.
    assert "failed to deliver 2 trace(s) (no answer after retries: HTTP 503" in err, err
    assert "requeued" not in err
    assert "on_error: exit-0 exit-1" in err  # every trace that will not be delivered


async def test_nothing_to_do_after_shutdown(server: FaultServer) -> None:
    """A process that shut down cleanly sends nothing more at exit."""
    code, out, err = await run_script("no_shutdown.py", server.url, "shutdown", "4")
    assert code == 0, err
    assert len(server.batch_requests()) == 1
    assert sorted(server.accepted_ids()) == sorted(out.split())


@pytest.mark.parametrize("mode", ["asyncio_run", "no_loop"])
async def test_exit_delivery_to_a_host_name(server: FaultServer, mode: str) -> None:
    """At exit a host name still resolves (no executor threads are allowed by then)."""
    endpoint = server.url.replace("127.0.0.1", "localhost")
    code, out, err = await run_script("no_shutdown.py", endpoint, mode, "3")
    assert code == 0, err
    assert sorted(server.accepted_ids()) == sorted(out.split())
    assert len(server.accepted_ids()) == 3
    assert "Traceback" not in err


async def test_tracers_share_one_exit_budget(server: FaultServer) -> None:
    """Two tracers at exit, a server that never answers: the first tried sends one batch,
    cut off when the shared budget (the longest ``timeout``) runs out; the second, left
    no time, sends nothing. Each fails all it holds, saying why."""
    server.default = Reply(delay=120)
    code, _, err = await run_script("exit_budget.py", server.url)
    assert code == 0, err
    # One request: the first tracer's first batch; the second tracer had no time left.
    assert [r.trace_ids for r in server.batch_requests()] in ([["a-0"]], [["b-0"]])
    lines = sorted(line for line in err.splitlines() if line.startswith("on_error"))
    assert lines == [
        "on_error a: process exited before delivery: a-0 a-1",
        "on_error b: process exited before delivery: b-0 b-1",
    ], err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("mode", "count"), [("no_loop", 1), ("in_flight", 1), ("in_flight", 3), ("session", 2)]
)
async def test_exit_delivers_a_single_trace_and_traces_in_flight(
    server: FaultServer, mode: str, count: int
) -> None:
    """Exit delivery runs for one queued trace, for traces only in flight (none queued)
    on a loop closed by hand (sent again by the exit attempt), and for a tracer given the
    application's session, whose loop is gone by then (the attempt uses its own)."""
    if mode == "in_flight":
        server.default = Reply(delay=0.5)  # so the batch is in flight when the loop closes
    code, out, err = await run_script("no_shutdown.py", server.url, mode, str(count))
    assert code == 0, err
    assert len(out.split()) == count
    assert sorted(set(server.accepted_ids())) == sorted(out.split())
