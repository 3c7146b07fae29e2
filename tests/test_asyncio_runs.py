"""One tracer across successive ``asyncio.run()`` calls and loops closed by hand, in real
subprocesses (``tests/_scripts``)."""

from __future__ import annotations

import re

import pytest

from tests._proc import run_script
from tests._server import FaultServer, Reply


async def test_import_time_construction(server: FaultServer) -> None:
    """A tracer built at module import (no loop) works inside a later asyncio.run()."""
    code, out, err = await run_script("import_time.py", env={"TRACING_ENDPOINT": server.url})
    assert code == 0, err
    assert sorted(server.accepted_ids()) == sorted(out.split())
    assert len(server.accepted_ids()) == 3


async def test_a_bad_env_endpoint_at_import_names_the_variable() -> None:
    """A module-level tracer with ``TRACING_ENDPOINT=localhost:7070`` (no scheme) stops
    the import with a message that says the value came from that variable."""
    code, _out, err = await run_script("import_time.py", env={"TRACING_ENDPOINT": "localhost:7070"})
    assert code != 0
    assert (
        "ValueError: TRACING_ENDPOINT: endpoint must be an http:// or https:// URL, "
        "got 'localhost:7070'"
    ) in err


@pytest.mark.parametrize("mode", ["flush", "leave", "closed", "collected", "idle", "stopped"])
async def test_two_asyncio_runs_in_one_process(server: FaultServer, mode: str) -> None:
    """Traces from two successive asyncio.run() calls are all delivered and counted once.

    A batch still in flight when the first loop ends may have reached the server before
    its loop died, and is sent again from the next loop: at least once, stored once by id.
    The script itself checks that ``sent`` counts each trace once.
    """
    server.default = Reply(delay=0.05)  # so the first run ends with a batch in flight
    code, out, err = await run_script("two_runs.py", server.url, mode)
    assert code == 0, err
    ended = re.search(r"first run ended: queued=(\d+) in_flight=(\d+)", err)
    assert ended, err
    queued, in_flight = int(ended[1]), int(ended[2])
    if mode in ("leave", "closed", "collected", "stopped"):
        assert in_flight > 0, "the first run must end with a batch in flight"
        assert queued + in_flight == 5
    else:
        assert in_flight == 0
    expected = out.split()
    assert len(expected) == (6 if mode == "idle" else 10)
    if in_flight:
        assert set(server.accepted_ids()) == set(expected)
    else:
        assert sorted(server.accepted_ids()) == sorted(expected)
    assert "Traceback" not in err
    if mode in ("idle", "stopped"):
        assert "Task was destroyed" not in err
    if mode == "stopped":  # the first loop's flusher closed its session when it ran again
        assert "Unclosed client session" not in err, err
