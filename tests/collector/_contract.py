"""What the contract tests share: request helpers, wire traces, the database for a
module-scoped collector of each kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.collector.conftest import Collector, fresh_database

MAX_BODY = 20_000
KEYS = ("key-one", "key-two")
START = "2026-11-21T12:00:00.000000Z"
END = "2026-11-21T12:00:01.000000Z"
FAST: dict[str, Any] = {"flush_interval": 0, "retry_backoff": 0.01, "timeout": 10.0}


def nested(depth: int) -> list[Any]:
    """``depth`` levels of lists (``[]`` is one)."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def database(request: pytest.FixtureRequest, tmp: Path) -> str:
    if request.param == "sqlite":
        return str(tmp / "collector.db")
    return await fresh_database(request.getfixturevalue("pg_server"))


async def post(
    client: aiohttp.ClientSession,
    collector: Collector,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **(headers or {})}
    async with client.post(f"{collector.url}/api/traces/batch", data=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def get(client: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with client.get(url, allow_redirects=False, **kwargs) as response:
        return response.status, await response.json(content_type=None)


def wire(trace_id: Any, **changes: Any) -> dict[str, Any]:
    trace: dict[str, Any] = {"id": trace_id, "name": "contract", "startTime": START}
    trace["endTime"] = END
    trace.update(changes)
    return {k: v for k, v in trace.items() if v is not ...}


def span(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {"id": "s", "name": "n", **changes}.items() if v is not ...}
