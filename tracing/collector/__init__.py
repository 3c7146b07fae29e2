"""The reference receiver: ``python -m tracing.collector``.

An aiohttp server that accepts the SDK's batches (``POST /api/traces/batch``), stores
them in SQLite, serves them back (``GET /api/traces``, ``GET /api/traces/{id}``) and shows
them in a web viewer (``GET /``). ``import tracing`` never imports this package.
"""

from __future__ import annotations

from ._app import DEFAULT_MAX_BODY, make_app, serve

__all__ = ["DEFAULT_MAX_BODY", "make_app", "serve"]
