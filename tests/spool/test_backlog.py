"""A large backlog is replayed in bounded pieces: the replaying process's memory stays far
below the backlog's size (the 1 GB figure is in benchmarks/spool.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests._server import FaultServer, Reply
from tests.spool._backlog import write_backlog
from tests.spool._child import Child, check_counts, spool_files

COUNT = 60_000


@pytest.mark.timeout(300)
async def test_large_backlog_replays_with_bounded_memory(
    server: FaultServer, tmp_path: Path
) -> None:
    """60k orphaned traces (~64 MB): all delivered once; peak RSS grows by far less."""
    spool_dir = tmp_path / "spool"
    size = await asyncio.to_thread(write_backlog, spool_dir, COUNT)
    server.default = Reply(200, results=False)
    child = await Child(
        server.url, spool_dir, {"max_queue_size": 1000, "flush_at": 100, "flush_interval": 0.01}
    ).start()
    start_kb = child.ready["maxrss_kb"]
    await server.wait_for_traces(COUNT, timeout=120)
    final = await child.ask("shutdown", timeout=10)
    assert await child.finish() == 0
    check_counts(final)
    assert final["replayed"] == final["sent"] == COUNT
    ids = server.accepted_ids()
    assert len(ids) == len(set(ids)) == COUNT
    grown = (final["maxrss_kb"] - start_kb) * 1024
    assert grown < size / 3, (grown, size)
    assert not spool_files(spool_dir)
