"""Disk faults in a real process: a full disk (RLIMIT_FSIZE) and a read-only spool_dir.
The host never sees an exception, memory takes over, the counts stay right, and the spool
resumes once the disk does."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
from pathlib import Path

import pytest

from tests._server import FaultServer, Reply, check_invariant
from tests.spool._child import Child, check_counts, spool_files
from tests.spool.conftest import MakeSpooled, wait_stats
from tracing import Trace


def no_file_growth() -> None:
    """In the child before exec: no file may grow past 0 bytes (the soft limit can rise)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


async def test_full_disk_falls_back_to_memory_and_resumes(
    server: FaultServer, tmp_path: Path
) -> None:
    """Writes fail (EFBIG): one warning, traces kept in memory and delivered; after the
    limit is lifted the spool writes again."""
    spool_dir = tmp_path / "spool"
    server.default = Reply(503)
    child = await Child(server.url, spool_dir, preexec=no_file_growth).start()
    first = await child.ask("enqueue", n=40)
    stats = await child.ask("flush")
    check_counts(stats)
    assert stats["spooled"] == stats["dropped"] == 0
    assert stats["queue_size"] == 40
    assert all(p.stat().st_size == 0 for p in spool_files(spool_dir))
    await child.ask("fsize", limit=resource.RLIM_INFINITY)
    ids = list(first["ids"])
    async with asyncio.timeout(30):
        while not any(p.stat().st_size > 0 for p in spool_files(spool_dir)):
            ids += (await child.ask("enqueue", n=2))["ids"]
            await child.ask("flush")
    server.default = Reply(200)
    final = await child.ask("shutdown", timeout=10)
    assert await child.finish() == 0
    check_counts(final)
    assert (final["sent"], final["dropped"], final["failed"]) == (len(ids), 0, 0)
    assert sorted(server.accepted_ids()) == sorted(ids)
    assert child.log.count("cannot write") == 1, child.log
    assert "writing to" in child.log
    assert "again" in child.log


async def test_read_only_spool_dir_falls_back_and_resumes(
    server: FaultServer, tmp_path: Path
) -> None:
    """A spool_dir the process may not write: memory only, one warning, everything
    delivered; once it becomes writable the process opens its part there."""
    spool_dir = tmp_path / "ro"
    spool_dir.mkdir()
    spool_dir.chmod(0o555)
    # root ignores permission bits: drop the capabilities that let it (util-linux setpriv)
    wrap = (
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
        if os.geteuid() == 0
        else []
    )
    child = await Child(server.url, spool_dir, wrap=wrap).start()
    first = await child.ask("enqueue", n=30)
    stats = await child.ask("flush")
    check_counts(stats)
    assert stats["sent"] == 30
    assert os.listdir(spool_dir) == []
    spool_dir.chmod(0o755)
    ids = list(first["ids"])
    async with asyncio.timeout(30):
        while not any(n.startswith("p-") for n in os.listdir(spool_dir)):
            ids += (await child.ask("enqueue", n=1))["ids"]
            await child.ask("flush")
    ids += (await child.ask("enqueue", n=10))["ids"]
    final = await child.ask("shutdown", timeout=10)
    assert await child.finish() == 0
    check_counts(final)
    assert (final["sent"], final["dropped"], final["failed"]) == (len(ids), 0, 0)
    assert sorted(server.accepted_ids()) == sorted(ids)
    assert child.log.count("cannot create its directory") == 1, child.log


async def test_a_spool_dir_deleted_while_in_use(
    server: FaultServer,
    make_spooled: MakeSpooled,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``spool_dir`` deleted under a running tracer (its open files still take writes),
    the backend down: one warning; what the part held on disk only is counted failed (its
    bytes are gone); queued traces whose records were there are not said to be kept (a
    shutdown that cannot send them fails them and passes them to ``on_error``); traces
    after it are spooled in a new part, which the next start delivers."""
    server.default = Reply(503)
    told: list[str] = []
    tracer = make_spooled(
        max_queue_size=10, flush_at=10, on_error=lambda exc, ts: told.extend(t.id for t in ts)
    )
    await tracer.start()
    before = [f"before-{i:02d}" for i in range(30)]
    assert all(tracer.enqueue(Trace("before", id=i)) for i in before)
    assert tracer._spool is not None
    await tracer._spool.sync(timeout=30)
    assert tracer.stats().spooled == 20  # memory holds 10
    [old] = spool_dir.glob("p-*")
    shutil.rmtree(spool_dir)
    # The writer notices at its next cycle, and makes a new part at once.
    stats = await wait_stats(tracer, lambda _: any(p != old for p in spool_dir.glob("p-*")))
    assert stats.spooled == 0
    assert stats.failed >= 20
    assert f"{old} was deleted while in use; 20 trace(s) kept there on disk only" in caplog.text
    await tracer._spool.sync(timeout=30)  # a whole cycle since: the new part's room counted
    after = [f"after-{i}" for i in range(5)]
    assert all(tracer.enqueue(Trace("after", id=i)) for i in after)
    await tracer._spool.sync(timeout=30)
    final = await tracer.shutdown(timeout=2)
    check_invariant(final)
    assert (final.spooled, final.failed, final.dropped) == (5, 30, 0)
    assert sorted(told) == before[:10]  # the 20 others' bytes are gone: counted, not told
    server.default = Reply(200)
    again = make_spooled()
    await again.start()
    await server.wait_until(lambda: set(after) <= set(server.accepted_ids()), timeout=30)
    assert not set(before) & set(server.accepted_ids())
    assert again.stats().replayed == 5
