"""``mypy --strict`` on ``examples/llm_clients.py``: instrumented clients keep their
types (``assert_type`` there), and a misuse is caught (a second, broken file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKEN = """
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI
from tracing import AsyncTracing

tracer = AsyncTracing(enabled=False)
client: AsyncAnthropic = tracer.instrument(AsyncOpenAI(api_key="k"))
"""


@pytest.mark.timeout(600)
def test_mypy_strict_keeps_client_types(tmp_path: Path) -> None:
    """The example passes ``mypy --strict``; assigning an instrumented AsyncOpenAI to an
    AsyncAnthropic variable is an error."""
    broken = tmp_path / "broken_llm_types.py"
    broken.write_text(BROKEN)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "strict-example"),  # its own: other options
            "examples/llm_clients.py",
            str(broken),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    assert "broken_llm_types.py:7:" in errors[0]
    assert 'expression has type "AsyncOpenAI", variable has type "AsyncAnthropic"' in errors[0]
