"""What reaches the disk's own storage, as far as a test in a VM can see it: the order of
``writev`` and ``fsync`` calls on the spool's files, traced with strace in a real child
process. (A real power loss cannot be made here: the page cache lives as long as the VM,
and the virtual disk's own cache is the host's. So this checks the calls the durability
of each ``spool_fsync`` rests on, not the device.)"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

from tests._helpers import PATIENCE
from tests._proc import ROOT, child_env
from tests._server import FaultServer

# "1234 writev(7</tmp/.../00000001.seg>, ..." and "1234 fsync(8</tmp/.../p-...> <unfinished"
CALL = re.compile(r"^(\d+)\s+(writev|fsync|fdatasync|sendto)\((\d+)<([^>]*)>")
STRACE = shutil.which("strace") or "/usr/bin/strace"  # `make test` installs it


async def traced_calls(
    server: FaultServer, spool_dir: Path, mode: str, pause: float = 0.0
) -> list[tuple[str, ...]]:
    """(thread, call, path) of every writev/fsync/sendto the child made, in order."""
    log = spool_dir.parent / f"strace-{mode}.txt"
    proc = await asyncio.create_subprocess_exec(
        *(STRACE, "-f", "-yy", "-qq", "-e", "trace=writev,fsync,fdatasync,sendto"),
        *("-o", str(log), sys.executable, "-m", "tests.spool._fsync_child"),
        *(server.url, str(spool_dir), mode, str(pause)),
        cwd=ROOT,
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120 * PATIENCE)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert out.decode().split() == ["200"]
    calls: list[tuple[str, ...]] = []
    for line in log.read_text().splitlines():
        match = CALL.match(line)
        if match:
            calls.append((match.group(1), match.group(2), match.group(4)))
    return calls


def spool_calls(calls: list[tuple[str, ...]], spool_dir: Path) -> list[tuple[str, ...]]:
    return [c for c in calls if c[2].startswith(str(spool_dir))]


async def test_always_syncs_each_group_before_the_next(server: FaultServer, tmp_path: Path):
    """ "always": in the writer thread every writev of a segment is followed by an fsync of
    that segment before its next write, the new segment's directory is synced too, and
    the first POST goes out after the first fsync."""
    spool_dir = tmp_path / "spool"
    calls = await traced_calls(server, spool_dir, "always")
    ours = spool_calls(calls, spool_dir)
    writes = [c for c in ours if c[1] == "writev"]
    assert len(writes) >= 5  # one group per flush() at least
    writer = writes[0][0]
    pending: str | None = None
    for thread, call, path in ours:
        if thread != writer:
            continue
        if call == "writev":
            assert pending in (None, path), f"a write to {path} before {pending} was synced"
            pending = path
        elif call == "fsync" and path == pending:
            pending = None
    assert pending is None
    part = str(Path(writes[0][2]).parent)
    assert (writer, "fsync", part) in ours  # the new file's directory entry
    # The first POST: a send on a TCP socket (-yy names it), not the event loop's self-pipe
    # (a Unix socket pair, written when the writer thread wakes the loop).
    first_post = next(i for i, c in enumerate(calls) if c[1] == "sendto" and c[2][:3] == "TCP")
    synced = {c[2] for c in calls[:first_post] if c[1] == "fsync"}
    # Before anything is sent: the first segment, its part, the part's name in spool_dir,
    # and spool_dir's name in its parent (the test made it fresh).
    assert {writes[0][2], part, str(spool_dir), str(tmp_path)} <= synced


async def test_interval_syncs_in_the_background_and_everything_at_shutdown(
    server: FaultServer, tmp_path: Path
):
    """ "interval": the writer thread itself never waits for an fsync (a helper thread or
    the shutdown does them), and by the end of a clean shutdown every segment written
    since its last sync was synced after its last write."""
    spool_dir = tmp_path / "spool"
    ours = spool_calls(await traced_calls(server, spool_dir, "interval", 0.3), spool_dir)
    writes = [c for c in ours if c[1] == "writev"]
    assert len(writes) >= 5
    writer = writes[0][0]
    last_write = max(i for i, c in enumerate(ours) if c[1] == "writev")
    between = [c for c in ours[:last_write] if c[1] == "fsync" and c[2][-4:] == ".seg"]
    assert between  # 1.5 s of writing: at least one sync in the background
    assert all(thread != writer for thread, _, _ in between)
    for path in {p for _, _, p in writes}:
        last_write = max(i for i, c in enumerate(ours) if c[1:] == ("writev", path))
        synced = [i for i, c in enumerate(ours) if c[1:] == ("fsync", path)]
        assert synced, path
        assert max(synced) > last_write, path


async def test_interval_syncs_the_new_part_at_once(server: FaultServer, tmp_path: Path):
    """The part's directory entry is synced when the part is made, in every mode but
    "never": a power loss a second later cannot take the part (and the synced records
    in it) away."""
    spool_dir = tmp_path / "spool"
    ours = spool_calls(await traced_calls(server, spool_dir, "interval"), spool_dir)
    first_write = next(i for i, c in enumerate(ours) if c[1] == "writev")
    assert str(spool_dir) in {c[2] for c in ours[:first_write] if c[1] == "fsync"}


async def test_never_syncs_nothing(server: FaultServer, tmp_path: Path):
    """ "never": writes, and not one fsync of the spool's files: the OS decides."""
    spool_dir = tmp_path / "spool"
    ours = spool_calls(await traced_calls(server, spool_dir, "never"), spool_dir)
    assert len([c for c in ours if c[1] == "writev"]) >= 5
    assert [c for c in ours if c[1] in ("fsync", "fdatasync")] == []
