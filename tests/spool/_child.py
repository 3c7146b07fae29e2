"""Drive ``tests/_scripts/spool_child.py``: a tracer with a spool in a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests._proc import SCRIPTS, child_env

__all__ = ["Child", "check_counts", "down_url", "spool_files"]


def down_url() -> str:
    """An endpoint where nothing listens (a port just released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def spool_files(spool_dir: Path, suffix: str = ".seg") -> list[Path]:
    """The spool's files with ``suffix``, as listed while its processes may still run."""
    while True:
        try:
            return sorted(spool_dir.glob(f"p-*/*{suffix}"))
        except FileNotFoundError:  # a part removed (emptied, adopted) while listed: again
            continue


def check_counts(stats: dict[str, Any]) -> None:
    """The 0.2 invariant, on a child's stats."""
    left = stats["enqueued"] + stats["replayed"]
    right = sum(
        stats[k] for k in ("sent", "failed", "dropped", "queue_size", "spooled", "in_flight")
    )
    assert left == right, stats


class Child:
    """One child process; ``ask()`` sends a command and returns its JSON answer."""

    def __init__(
        self,
        endpoint: str,
        spool_dir: Path,
        options: dict[str, Any] | None = None,
        preexec: Callable[[], None] | None = None,
        wrap: list[str] | None = None,
    ) -> None:
        self.args = [
            *(wrap or []),
            sys.executable,
            str(SCRIPTS / "spool_child.py"),
            endpoint,
            str(spool_dir),
            json.dumps(options or {}),
        ]
        self.preexec = preexec
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}
        self.stderr = b""

    async def start(self) -> Child:
        env = child_env()  # also lets `make mutate` credit what the child runs to the test
        self.proc = await asyncio.create_subprocess_exec(
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            preexec_fn=self.preexec,
        )
        self.ready = await self.line()
        return self

    async def line(self, timeout: float = 30.0) -> Any:
        assert self.proc is not None
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            await self.finish()
            raise AssertionError(f"child exited: {self.stderr.decode(errors='replace')}")
        return json.loads(raw)

    async def ask(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        if op in ("stream", "busy"):  # no answer: lines until the test kills it
            return None
        return await self.line(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def finish(self, timeout: float = 40.0) -> int:
        """Close stdin and wait for the exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        assert self.proc.stderr is not None
        try:
            self.stderr += await asyncio.wait_for(self.proc.stderr.read(), timeout)
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        return code

    @property
    def log(self) -> str:
        return self.stderr.decode(errors="replace")
