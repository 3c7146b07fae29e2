"""run_worker(): a worker process stopped by SIGTERM or SIGINT in the middle of a job."""

from __future__ import annotations

import asyncio
import signal

import pytest

from .conftest import Recorder, read_until, spawn

SCRIPT = "tests/integrations/worker_script.py"


async def _run(recorder: Recorder, mode: str, sig: signal.Signals) -> tuple[int, list[str]]:
    """Start the worker, signal it while job 20 runs, return (exit code, stdout lines)."""
    proc = await spawn(SCRIPT, mode, TRACING_ENDPOINT=recorder.url)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        await asyncio.wait_for(read_until(proc.stdout, " 20\n", lines), 30)
        proc.send_signal(sig)
        lines += (await asyncio.wait_for(proc.stdout.read(), 30)).decode().splitlines(True)
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return code, [line.strip() for line in lines]


def _ids(lines: list[str], word: str) -> list[str]:
    return [line.split()[1] for line in lines if line.startswith(word + " ")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_finish_mode_completes_current_job_and_delivers_all(
    recorder: Recorder, sig: signal.Signals
) -> None:
    """The job in progress finishes, no new job starts, every completed trace arrives."""
    code, lines = await _run(recorder, "finish", sig)
    assert code == 0
    assert lines[-1] == "exit 0"
    started, done = _ids(lines, "started"), _ids(lines, "done")
    assert len(done) == 21, "jobs 0-19 and the one running at the signal"
    assert started == done, "no job started after the signal"
    received = recorder.by_id
    assert sorted(received) == sorted(done)
    assert len(recorder.received) == len(done), "each trace sent once"
    assert all(received[i]["status"] == "ok" for i in done)
    assert received[done[-1]]["input"]["job"] == 20


@pytest.mark.parametrize("mode", ["abandon", "grace"])
async def test_abandoned_job_is_cancelled_and_still_delivered(
    recorder: Recorder, mode: str
) -> None:
    """Abandoning (at once, or when grace ends) cancels the job; its trace is an error."""
    code, lines = await _run(recorder, mode, signal.SIGTERM)
    assert code == 0
    started, done = _ids(lines, "started"), _ids(lines, "done")
    assert len(done) == 20
    assert started[:-1] == done
    received = recorder.by_id
    assert sorted(received) == sorted(started)
    abandoned = received[started[-1]]
    assert abandoned["status"] == "error"
    assert abandoned["error"] == "CancelledError"
    assert abandoned["input"]["job"] == 20


async def test_second_signal_abandons_a_job_that_would_not_finish(recorder: Recorder) -> None:
    """In finish mode a second signal cancels the job; its trace still arrives."""
    proc = await spawn(SCRIPT, "twice", TRACING_ENDPOINT=recorder.url)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        await asyncio.wait_for(read_until(proc.stdout, " 20\n", lines), 30)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(read_until(proc.stdout, "stopping", lines), 30)
        proc.send_signal(signal.SIGINT)
        lines += (await asyncio.wait_for(proc.stdout.read(), 30)).decode().splitlines(True)
        assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    started = _ids([line.strip() for line in lines], "started")
    assert len(recorder.received) == len(started) == 21
    assert recorder.by_id[started[-1]]["error"] == "CancelledError"


async def test_custom_signals_stop_the_worker(recorder: Recorder) -> None:
    """signals=(SIGUSR1,): that signal stops the worker gracefully, like SIGTERM would."""
    code, lines = await _run(recorder, "usr1", signal.SIGUSR1)
    assert code == 0
    assert lines[-1] == "exit 0"
    done = _ids(lines, "done")
    assert len(done) == 21
    assert sorted(recorder.by_id) == sorted(done)


async def test_stop_while_waiting_in_take_ends_the_loop(recorder: Recorder) -> None:
    """A signal that comes while take() waits for the next job cancels that wait: the
    worker exits 0 at once and every trace it completed arrives."""
    proc = await spawn(SCRIPT, "idle", TRACING_ENDPOINT=recorder.url)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for _ in range(3):  # jobs 0, 1, 2: then the queue is empty and take() waits
            await asyncio.wait_for(read_until(proc.stdout, "done ", lines), 30)
        proc.send_signal(signal.SIGTERM)
        lines += (await asyncio.wait_for(proc.stdout.read(), 30)).decode().splitlines(True)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stripped = [line.strip() for line in lines]
    assert stripped[-1] == "exit 0"
    assert len(_ids(stripped, "started")) == 3
    assert sorted(recorder.by_id) == sorted(_ids(stripped, "done"))


async def test_main_raising_exits_1_after_delivering(recorder: Recorder) -> None:
    """When main raises, the traces are delivered first; then the exception propagates and
    asyncio.run() exits 1 with a traceback."""
    proc = await spawn(SCRIPT, "raise", TRACING_ENDPOINT=recorder.url)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 1
    assert "RuntimeError: the worker broke after job 5" in err.decode()
    lines = [line.strip() for line in out.decode().splitlines()]
    done = _ids(lines, "done")
    assert len(done) == 6
    assert "exit 0" not in lines
    assert sorted(recorder.by_id) == sorted(done)
