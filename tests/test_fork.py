"""A forked child starts clean (``os.register_at_fork``), in a real subprocess."""

from __future__ import annotations

import json
import sys

import pytest

from tests._proc import run_script
from tests._server import FaultServer, Reply

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="os.fork() is POSIX only")


@pytest.mark.parametrize("parent_flushes", ["flush", "leave"])
async def test_child_starts_clean(server: FaultServer, parent_flushes: str) -> None:
    """The child never re-sends the parent's queue, starts at zero and delivers its own."""
    code, out, err = await run_script("fork.py", server.url, parent_flushes)
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    ids = server.accepted_ids()
    assert len(ids) == len(set(ids)), "a trace arrived twice"
    assert sorted(ids) == sorted(report["parent_ids"] + report["child_ids"])
    child = report["child_stats"]
    assert child["enqueued"] == child["sent"] == len(report["child_ids"]) == 4
    assert child["failed"] == child["dropped"] == 0
    assert report["child_start"]["enqueued"] == 0
    assert report["child_start"]["queue_size"] == 0
    assert report["child_repr"] == f"<AsyncTracing {server.url} state=new queued=0 in_flight=0>"
    assert "Exception ignored" not in err
    # A trace handed to the child's tracer after its shutdown is dropped, and the child's
    # own drop warning says so (the parent drops nothing).
    assert report["child_late_enqueued"] is False
    assert "tracing dropped 1 trace(s): 1 because the tracer is shut down" in err
    parent = report["parent_stats"]
    assert parent["sent"] == parent["enqueued"] == len(report["parent_ids"]) == 6
    for record in server.requests:
        pids = {t["metadata"]["pid"] for t in record.traces}
        assert len(pids) == 1  # no request mixes parent and child traces


async def test_fork_from_a_running_loop(server: FaultServer) -> None:
    """multiprocessing's fork from inside a running loop, batches in flight: child is clean."""
    server.default = Reply(delay=0.2)
    code, out, err = await run_script("fork_in_loop.py", server.url)
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["parent_in_flight_at_fork"] >= 2  # the state this test is about
    ids = server.accepted_ids()
    assert len(ids) == len(set(ids)), "a trace arrived twice"
    assert sorted(ids) == sorted(report["parent_ids"] + report["child_ids"])
    assert report["child_start"]["enqueued"] == 0
    assert report["child_start"]["in_flight"] == 0
    child = report["child_stats"]
    assert child["enqueued"] == child["sent"] == 4
    parent = report["parent_stats"]
    assert parent["enqueued"] == parent["sent"] == 5
