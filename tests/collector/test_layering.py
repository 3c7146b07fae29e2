"""The collector's place in the package: the SDK never imports it, and it uses only the
SDK's wire format and models."""

from __future__ import annotations

import ast
from pathlib import Path

import tracing.collector
from tests import _proc

ALLOWED = {"tracing._wire", "tracing._models"}


async def test_sdk_does_not_import_the_collector() -> None:
    """``import tracing`` leaves ``tracing.collector`` (and aiohttp.web) unloaded."""
    check = (
        "import sys, tracing; "
        "assert 'tracing.collector' not in sys.modules; "
        "assert 'aiohttp.web' not in sys.modules; "
        "print('unloaded')"
    )
    code, out, err = await _proc.run("-c", check)
    assert code == 0, err
    assert out.strip() == "unloaded"


def test_collector_imports_only_wire_and_models() -> None:
    """Every ``tracing.*`` import in the collector is ``_wire`` or ``_models``."""
    package = Path(tracing.collector.__file__).parent
    used: set[str] = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                used.add(node.module)
            elif isinstance(node, ast.Import):
                used.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level > 1:
                used.add("tracing." + "?" * node.level)  # reaching out of the package
    sdk = {name for name in used if name == "tracing" or name.startswith("tracing.")}
    assert sdk <= ALLOWED, sdk - ALLOWED


async def test_sqlite_collector_does_not_load_the_postgres_driver(tmp_path: Path) -> None:
    """The PostgreSQL driver is an extra: a SQLite collector never imports asyncpg."""
    code = (
        "import asyncio, sys\n"
        "from tracing.collector._storage import open_store\n"
        "async def main():\n"
        f"    store = open_store({str(tmp_path / 'x.db')!r})\n"
        "    await store.open()\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
        "assert 'asyncpg' not in sys.modules\n"
        "print('no asyncpg')\n"
    )
    status, out, err = await _proc.run("-c", code)
    assert status == 0, err
    assert out.strip() == "no asyncpg"
