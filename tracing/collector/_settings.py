"""Typed keys for what the application and each request carry (aiohttp ``AppKey``)."""

from __future__ import annotations

import attrs
from aiohttp import web

from ._auth import Keys
from ._storage import TraceStore

__all__ = ["SESSION", "SETTINGS", "STORE", "TRACE_COUNT", "Settings"]


@attrs.frozen
class Settings:
    """What the command line decided: where the data lives, who may call, how big."""

    db: str
    keys: Keys
    max_body: int
    # Without keys on a loopback address, only loopback Host names are answered: a web
    # page cannot reach the collector through DNS rebinding.
    loopback_hosts_only: bool = False


SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", TraceStore)
# How many traces a request carried or returned, for its log line.
TRACE_COUNT = web.RequestKey("trace_count", int)
# True when the request was let in by a browser session cookie (the page shows sign-out).
SESSION = web.RequestKey("session", bool)
