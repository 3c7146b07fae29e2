"""``examples/demo.py`` as a user runs it: a real process, its real collector."""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from pathlib import Path

import aiohttp

from tests import _proc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def test_demo_with_db_prints_the_command_for_that_database(tmp_path: Path) -> None:
    """``--db X`` used to end with "run `make serve`", which opens another database: the
    last lines name the exact command for X, and that command really shows its traces."""
    db = tmp_path / "my traces.db"
    proc = await _proc.spawn(
        str(EXAMPLES / "demo.py"),
        "--requests",
        "12",
        "--concurrency",
        "4",
        "--db",
        str(db),
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    (line,) = [line for line in text.splitlines() if "viewer:" in line]
    assert "make serve" not in text
    command = line.split("`")[1]
    argv = shlex.split(command)
    assert argv == [sys.executable, "-m", "tracing.collector", "--db", str(db)]
    server = await asyncio.create_subprocess_exec(
        *argv, "--port", "0", stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        assert server.stderr is not None
        async with asyncio.timeout(30):
            while not (
                found := re.search(rb"listening on (http://\S+)", await server.stderr.readline())
            ):
                pass
        url = found.group(1).decode() + "/api/traces"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            # 12 agent requests, then 4 traces of examples/llm_clients.py's LLM calls
            assert (await response.json())["total"] == 12 + 4
    finally:
        server.terminate()
        await server.wait()
