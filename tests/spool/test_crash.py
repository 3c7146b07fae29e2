"""kill -9 and several processes on one spool_dir: real processes, real files, the real
collector. A trace accepted >= 0.1 s before its process was killed is delivered by the
next process, and the collector stores it once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests._server import FaultServer, Reply
from tests.collector.conftest import Collector
from tests.spool._child import Child, check_counts, down_url, spool_files

MARGIN = 0.1  # the contract: accepted at least this long before the kill


async def stored_ids(url: str) -> list[str]:
    """Every trace id the collector stores (one entry per stored trace)."""
    ids: list[str] = []
    async with aiohttp.ClientSession() as http:
        offset = 0
        while True:
            async with http.get(f"{url}/api/traces?limit=1000&offset={offset}") as response:
                page = await response.json()
            ids += [t["id"] for t in page["traces"]]
            offset += len(page["traces"])
            if not page["traces"] or offset >= page["total"]:
                return ids


async def collect(child: Child, accepted: dict[str, float]) -> None:
    """Read a streaming child's ``{"id", "t"}`` (or ``{"ids", "t"}``) lines until it dies."""
    assert child.proc is not None
    assert child.proc.stdout is not None

    async for raw in child.proc.stdout:
        line = json.loads(raw)
        if "id" in line:
            accepted[line["id"]] = line["t"]
        for trace_id in line.get("ids", ()):
            accepted[trace_id] = line["t"]


def sizes(spool_dir: Path, suffix: str) -> dict[Path, int]:
    """Each file's size; one removed between listing and reading (its part emptied while
    the child runs) is left out."""
    found: dict[Path, int] = {}
    for path in spool_files(spool_dir, suffix):
        with contextlib.suppress(FileNotFoundError):
            found[path] = path.stat().st_size
    return found


async def kill_when_grows(child: Child, spool_dir: Path, suffix: str) -> None:
    """SIGKILL right after a file with ``suffix`` grows (a write, or an ack, just landed)."""
    start = sizes(spool_dir, suffix)
    async with asyncio.timeout(30):
        while True:
            now = sizes(spool_dir, suffix)
            if any(size > start.get(path, 0) for path, size in now.items()):
                child.kill()
                return
            await asyncio.sleep(0.0005)


async def run_and_kill(endpoint: str, spool_dir: Path, mode: str, rng: random.Random) -> Any:
    accepted: dict[str, float] = {}
    options = {"spool_fsync": "always"} if mode == "after_sync" else {}
    child = await Child(endpoint, spool_dir, options).start()
    reader = asyncio.create_task(collect(child, accepted))
    await child.ask("stream", pause=0.002)
    await asyncio.sleep(0.15)  # some traces before the chosen moment
    if mode == "random":
        await asyncio.sleep(rng.uniform(0.0, 0.5))
        child.kill()
    elif mode == "mid_ack":
        await kill_when_grows(child, spool_dir, ".ack")
    else:  # after_write / after_sync: the segment just grew
        await kill_when_grows(child, spool_dir, ".seg")
    killed = time.monotonic()
    await child.finish()
    await reader
    return accepted, killed


@pytest.mark.timeout(300)
async def test_kill_9_loop_delivers_every_trace_accepted_before_the_kill(
    collector: Collector, tmp_path: Path
) -> None:
    """SIGKILL at random moments, right after a write, after a sync and mid-ack, on one
    spool_dir; a last process with a live collector delivers all, each stored once."""
    spool_dir = tmp_path / "spool"
    rng = random.Random(9)
    down = down_url()
    must: set[str] = set()
    everything: set[str] = set()
    plan = [
        (down, "random"),
        (down, "after_write"),
        (down, "random"),
        (down, "after_sync"),
        (collector.url, "mid_ack"),
        (down, "after_write"),
    ]
    for endpoint, mode in plan:
        accepted, killed = await run_and_kill(endpoint, spool_dir, mode, rng)
        assert accepted, mode
        must |= {i for i, t in accepted.items() if t <= killed - MARGIN}
        everything |= set(accepted)
    assert len(must) > 100
    last = await Child(collector.url, spool_dir, {"flush_interval": 0.02}).start()
    async with asyncio.timeout(60):
        while not must <= set(await stored_ids(collector.url)):  # noqa: ASYNC110 (polls another process)
            await asyncio.sleep(0.05)
    stats = await last.ask("shutdown", timeout=10)
    await last.finish()
    check_counts(stats)
    stored = await stored_ids(collector.url)
    assert len(stored) == len(set(stored)), "the collector stored a trace twice"
    assert must <= set(stored)
    assert set(stored) <= everything
    assert stats["enqueued"] == 0
    assert stats["replayed"] > 0
    assert not spool_files(spool_dir), "every part was replayed and removed"


@pytest.mark.timeout(300)
async def test_kill_9_while_the_event_loop_is_busy_keeps_what_was_accepted_before(
    collector: Collector, server: FaultServer, tmp_path: Path
) -> None:
    """A busy event loop (1 KB traces made flat out, batches posted as fast) used to
    starve the spool writer of the GIL for seconds, so traces accepted well before a
    SIGKILL were neither sent nor on disk. The loop now lends the writer the GIL: every
    trace accepted 0.1 s before the kill reached the server or is delivered by the next
    process."""
    spool_dir = tmp_path / "spool"
    accepted: dict[str, float] = {}
    child = await Child(server.url, spool_dir, {"max_queue_size": 50_000}).start()
    reader = asyncio.create_task(collect(child, accepted))
    await child.ask("busy", every=50)
    async with asyncio.timeout(60):
        while len(accepted) < 40_000:  # noqa: ASYNC110 (polls another process)
            await asyncio.sleep(0.01)
    child.kill()
    killed = time.monotonic()
    await child.finish()
    await reader
    must = {i for i, t in accepted.items() if t <= killed - MARGIN}
    assert len(must) > 20_000
    received = {
        i for request in server.requests if request.status == 200 for i in request.trace_ids
    }
    last = await Child(collector.url, spool_dir, {"flush_interval": 0.02}).start()
    async with asyncio.timeout(120):
        while not must <= received | set(await stored_ids(collector.url)):  # noqa: ASYNC110 (polls another process)
            await asyncio.sleep(0.2)
    stats = await last.ask("shutdown", timeout=30)
    await last.finish()
    check_counts(stats)
    assert must <= received | set(await stored_ids(collector.url))


@pytest.mark.timeout(300)
async def test_four_processes_and_one_killed_share_a_spool_dir(
    collector: Collector, tmp_path: Path
) -> None:
    """Four live processes and one SIGKILLed on one spool_dir: each writes its own part; the
    dead one's part is adopted by exactly one of the others and replayed once."""
    spool_dir = tmp_path / "spool"
    down = down_url()
    victim = await Child(down, spool_dir).start()
    orphaned = await victim.ask("enqueue", n=200)
    await asyncio.sleep(MARGIN)  # the contract's window, then the kill
    victim.kill()
    await victim.finish()
    assert len(spool_files(spool_dir)) == 1
    workers = [await Child(collector.url, spool_dir).start() for _ in range(4)]
    own = [await w.ask("enqueue", n=50) for w in workers]
    async with asyncio.timeout(60):
        while True:
            stats = [await w.ask("stats") for w in workers]
            if sum(s["sent"] for s in stats) >= 400:
                break
            await asyncio.sleep(0.05)
    finals = [await w.ask("shutdown", timeout=10) for w in workers]
    for worker in workers:
        assert await worker.finish() == 0
    for final in finals:
        check_counts(final)
    replayed = [f["replayed"] for f in finals]
    assert sorted(replayed) == [0, 0, 0, 200], "exactly one adopter replayed the orphan"
    assert sum(f["enqueued"] for f in finals) == 200
    stored = await stored_ids(collector.url)
    assert len(stored) == len(set(stored)) == 400
    assert set(orphaned["ids"]) | {i for o in own for i in o["ids"]} == set(stored)
    assert os.listdir(spool_dir) == []


async def test_exit_without_shutdown_keeps_traces_for_the_next_start(
    server: FaultServer, tmp_path: Path
) -> None:
    """A process that returns from main without shutdown() during an outage: the atexit
    attempt fails, the traces stay on disk (logged with a count), the next start sends them."""
    spool_dir = tmp_path / "spool"
    server.default = Reply(503)
    child = await Child(server.url, spool_dir).start()
    accepted = await child.ask("enqueue", n=25)
    await child.ask("exit")
    assert await child.finish() == 0
    assert "kept 25 trace(s) in the spool" in child.log, child.log
    server.default = Reply(200)
    second = await Child(server.url, spool_dir).start()
    await server.wait_for_traces(25)
    stats = await second.ask("shutdown", timeout=10)
    assert await second.finish() == 0
    check_counts(stats)
    assert stats["replayed"] == 25
    assert set(server.accepted_ids()) == set(accepted["ids"])


async def test_exit_without_shutdown_delivers_to_a_live_server(
    server: FaultServer, tmp_path: Path
) -> None:
    """Returning from main without shutdown(), the backend up: the exit attempt, within
    its budget, sends what waited (nothing sent before: no flush came due), and keeps none."""
    child = await Child(
        server.url, tmp_path / "spool", {"flush_at": 100, "flush_interval": 3600}
    ).start()
    accepted = await child.ask("enqueue", n=25)
    stats = await child.ask("stats")
    assert (stats["sent"], len(server.requests)) == (0, 0)  # all still waiting
    await child.ask("exit")
    assert await child.finish() == 0
    assert set(server.accepted_ids()) == set(accepted["ids"])
    assert "kept" not in child.log, child.log
    assert "Traceback" not in child.log, child.log
