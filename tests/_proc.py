"""The one way tests start a Python subprocess: a clean environment, the same ``tracing``.

A child gets no inherited ``TRACING_*`` variable, unbuffered output, and a ``PYTHONPATH``
that finds the ``tracing`` package these tests imported and the ``tests`` package, so a
script imports the code under test (also under ``make mutate``, which runs a copy).
``spawn()`` starts one and hands back the process; ``run()`` waits for it, with a bound,
killing it past the bound; ``run_script()`` runs ``tests/_scripts/<name>``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import tracing
from tests import _mutmut
from tests._helpers import PATIENCE

__all__ = ["ROOT", "SCRIPTS", "child_env", "run", "run_script", "spawn"]

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).parent / "_scripts"
_PACKAGE_ROOT = Path(tracing.__file__).resolve().parents[1]
RUN_TIMEOUT = 60.0 * PATIENCE


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment less ``TRACING_*``, with ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACING_")}
    paths = [str(_PACKAGE_ROOT), str(ROOT), *_mutmut.child_paths(), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


async def spawn(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: Any = asyncio.subprocess.DEVNULL,
    stdout: Any = asyncio.subprocess.PIPE,
    stderr: Any = asyncio.subprocess.PIPE,
    cwd: Path | None = None,
) -> asyncio.subprocess.Process:
    """Start ``python *args`` from the repository root (or ``cwd``)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd or ROOT,
        env=child_env(env),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
    )


async def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT
) -> tuple[int, str, str]:
    """Run ``python *args`` to its end; return (exit code, stdout, stderr)."""
    proc = await spawn(*args, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def run_script(
    name: str, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run tests/_scripts/<name> with this interpreter; return (code, stdout, stderr)."""
    return await run(str(SCRIPTS / name), *args, env=env)
