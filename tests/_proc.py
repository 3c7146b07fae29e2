"""Run a helper script from ``tests/_scripts`` in a real subprocess (atexit, fork, threads)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

__all__ = ["SCRIPTS", "run_script"]

SCRIPTS = Path(__file__).parent / "_scripts"


async def run_script(
    name: str, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run tests/_scripts/<name> with this interpreter; return (code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPTS / name),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=40)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
