"""Multi-process deployments: gunicorn ``--preload`` with uvicorn workers, and
``uvicorn --workers 2``. Every request of every worker is traced exactly once, SIGTERM
drains every worker, and a trace queued in the gunicorn master before the fork is sent by
the master alone (at its exit), never by a child."""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from typing import Any

import httpx

from .conftest import Recorder, read_until, spawn

APP = "tests.integrations.workers_app:app"
WORKERS = 2
BATCH = 40
MAX_ROUNDS = 25


async def _started(proc: asyncio.subprocess.Process, ready: str, log: list[str]) -> int:
    """Wait for the listening line (its port) and every worker's startup; return the port."""
    assert proc.stderr is not None
    line = await asyncio.wait_for(read_until(proc.stderr, ready, log), 60)
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    assert match, line
    for _ in range(WORKERS):
        await asyncio.wait_for(read_until(proc.stderr, "Application startup complete", log), 60)
    return int(match.group(1))


async def _load(port: int) -> dict[int, int]:
    """Requests (new connections each, so every worker accepts some) until two worker
    pids have answered; returns each request number's answering pid."""
    served: dict[int, int] = {}
    limits = httpx.Limits(max_connections=BATCH, max_keepalive_connections=0)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        for round_no in range(MAX_ROUNDS):
            numbers = range(round_no * BATCH, (round_no + 1) * BATCH)
            answers = await asyncio.gather(*(client.get(f"/work/{n}") for n in numbers))
            for n, answer in zip(numbers, answers, strict=True):
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert body == {"pid": body["pid"], "n": n, "result": 2 * n}
                served[n] = body["pid"]
            if len(set(served.values())) >= WORKERS:
                return served
    raise AssertionError(f"only pids {set(served.values())} answered {len(served)} requests")


async def _run(recorder: Recorder, argv: list[str], ready: str, **env: str) -> tuple[Any, ...]:
    proc = await spawn(*argv, TRACING_ENDPOINT=recorder.url, **env)
    assert proc.stderr is not None
    assert proc.stdout is not None
    out = asyncio.create_task(proc.stdout.read())  # read to the end: the pipe gets closed
    log: list[str] = []
    try:
        port = await _started(proc, ready, log)
        drain = asyncio.create_task(proc.stderr.read())  # the pipe must never fill up
        served = await _load(port)
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(drain, 60)).decode()
        code = await asyncio.wait_for(proc.wait(), 60)
        rest += (await asyncio.wait_for(out, 60)).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.pid, code, "".join(log) + rest, served


def _check_requests(recorder: Recorder, served: dict[int, int], parent_pid: int) -> None:
    requests = [t for t in recorder.received if t["name"] == "GET /work/{n}"]
    assert len(requests) == len(served), "one trace per request, none sent twice"
    assert len({t["id"] for t in requests}) == len(requests)
    by_number: dict[int, dict[str, Any]] = {}
    for trace in requests:
        (span,) = trace["spans"]
        number = span["input"]["n"]
        assert number not in by_number, f"request {number} traced twice"
        by_number[number] = trace
        assert span["output"] == 2 * number
    assert set(by_number) == set(served)
    for number, pid in served.items():
        assert by_number[number]["metadata"]["pid"] == pid, "traced by the worker that served it"
    assert parent_pid not in served.values()
    assert len(set(served.values())) == WORKERS


async def test_gunicorn_preload_uvicorn_workers(recorder: Recorder) -> None:
    """gunicorn --preload, 2 uvicorn workers: every request of both workers traced once,
    SIGTERM drains both, and the master's pre-fork trace arrives once, from the master."""
    argv = ["-m", "gunicorn", APP, "--preload", "--workers", str(WORKERS)]
    argv += ["--worker-class", "uvicorn_worker.UvicornWorker", "--bind", "127.0.0.1:0"]
    argv += ["--no-control-socket", "--graceful-timeout", "30"]
    master, code, log, served = await _run(
        recorder, argv, "Listening at:", WORKERS_TEST_PARENT_TRACE="1"
    )
    assert code == 0, log
    assert log.count("Application shutdown complete") == WORKERS, log
    _check_requests(recorder, served, master)
    parents = [t for t in recorder.received if t["name"] == "parent-import"]
    assert len(parents) == 1, "the master's trace is sent once, by the master"
    assert parents[0]["metadata"]["pid"] == master
    assert Counter(t["name"] for t in recorder.received).keys() == {
        "GET /work/{n}",
        "parent-import",
    }


async def test_uvicorn_two_workers(recorder: Recorder) -> None:
    """uvicorn --workers 2 (spawned workers, each importing the app): every request of
    both workers traced exactly once and delivered when SIGTERM stops them."""
    argv = ["-m", "uvicorn", APP, "--workers", str(WORKERS), "--host", "127.0.0.1"]
    argv += ["--port", "0", "--no-access-log"]
    parent, code, log, served = await _run(recorder, argv, "Uvicorn running on")
    assert code in (0, -signal.SIGTERM), log
    assert log.count("Application shutdown complete") == WORKERS, log
    _check_requests(recorder, served, parent)
    assert {t["name"] for t in recorder.received} == {"GET /work/{n}"}
