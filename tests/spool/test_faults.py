"""Disk faults in a real process: a full disk (RLIMIT_FSIZE) and a read-only spool_dir.
The host never sees an exception, memory takes over, the counts stay right, and the spool
resumes once the disk does."""

from __future__ import annotations

import asyncio
import os
import resource
from pathlib import Path

from tests._server import FaultServer, Reply
from tests.spool._child import Child, check_counts, spool_files


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
