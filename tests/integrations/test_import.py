"""Importing the SDK never imports a web framework."""

from __future__ import annotations

from tests import _proc

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


async def test_import_tracing_does_not_import_fastapi_or_starlette() -> None:
    """In a fresh interpreter, tracing and its worker helper load no FastAPI/Starlette."""
    code, out, err = await _proc.run("-c", CHECK)
    assert code == 0, err
    assert out.strip() == "ok"
