"""Importing the SDK never imports a web framework."""

from __future__ import annotations

import subprocess
import sys

from .conftest import child_env

CHECK = """
import sys
import tracing
import tracing.integrations
import tracing.integrations.worker
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette'))
assert not loaded, loaded
import tracing.integrations.fastapi
assert 'starlette' in sys.modules
print('ok')
"""


def test_import_tracing_does_not_import_fastapi_or_starlette() -> None:
    """In a fresh interpreter, tracing and its worker helper load no FastAPI/Starlette."""
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
