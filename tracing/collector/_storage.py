"""The storage interface every collector store implements, and what it passes around.

Routes and pages talk only to ``TraceStore``; ``open_store(url)`` picks the
implementation from ``--db``: a ``postgresql://`` (or ``postgres://``) URL is the
PostgreSQL store (the ``aiotracing[postgres]`` extra), anything else a SQLite file.

Rules every implementation keeps:

- Each call that writes is one transaction, and returns only after it committed: the
  collector answers a client only after its traces are durable.
- A trace is stored once by id and a span once by ``(trace id, span id)``, also when
  several collector processes write the same ids at the same time.
- Every failure of the database (gone, full, locked, closed) is a ``StoreError``; the
  routes answer it with 503 and ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

import attrs
import orjson

from ._records import SpanRecord, TraceRecord

__all__ = [
    "Cursor",
    "ListQuery",
    "Page",
    "StoreBase",
    "StoreError",
    "StoreFunctions",
    "TraceStore",
    "decode_cursor",
    "encode_cursor",
    "is_postgres_url",
    "open_store",
]


class StoreError(Exception):
    """The database could not do what was asked (unreachable, disk full, closed)."""


@attrs.frozen
class Cursor:
    """A position in the trace list: just after the trace ``(start_us, id)``."""

    start_us: int
    id: str


@attrs.frozen
class ListQuery:
    """What ``GET /api/traces`` asked for. ``cursor`` and ``offset`` combine: the page
    starts ``offset`` traces after the cursor (or after the start without one).

    ``before`` (the viewer's "newer" link; not with ``cursor``) asks for the ``limit``
    traces just before that position instead; when fewer than ``limit`` are there, the
    answer is the first page.
    """

    limit: int
    offset: int = 0
    name: str | None = None
    status: str | None = None  # "ok" | "error" | None for both
    cursor: Cursor | None = None
    before: Cursor | None = None


@attrs.frozen
class Page:
    """One page of the trace list, newest ``startTime`` first (ties: greater id first).

    ``items`` are list entries as served (with ``totalTokens`` and ``spanCount``);
    ``total`` counts every trace matching the filters; ``next_cursor`` continues after
    the last item, None when there is nothing after it; ``prev_cursor``, given as
    ``before``, is the page before this one, None on the first page.
    """

    total: int
    items: list[bytes]
    next_cursor: str | None
    prev_cursor: str | None = None


class TraceStore(Protocol):
    """A collector's trace storage. ``await open()`` before anything else (it creates or
    migrates the schema, under a lock where processes share the database) and
    ``await close()`` last. Every other method raises ``StoreError`` when the database
    fails."""

    @property
    def description(self) -> str:
        """Where the data lives, for the log (never a password)."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None:
        """Finish what is running and release the database. Idempotent."""
        ...

    async def add(self, traces: Sequence[TraceRecord]) -> list[bool]:
        """Store whole traces (``POST /api/traces/batch``) in one transaction.

        Returns one flag per trace: True when it was stored now, False when its id was
        already complete in the store (a re-send: acknowledged, stored once; its spans
        are not merged in). A trace whose row is only provisional (spans that arrived
        through ``add_spans`` before their root) is completed: its fields replace the
        stand-ins, and its spans join those already there (each span id once).
        A trace id repeated in one call counts as a re-send after its first occurrence.
        """
        ...

    async def add_spans(
        self, spans: Sequence[SpanRecord], roots: Sequence[TraceRecord] = ()
    ) -> list[bool]:
        """Store spans that may belong to traces arriving piecemeal (OTLP), in one
        transaction.

        ``roots`` are trace-level fields that arrived in this request (an OTLP root
        span becomes a ``TraceRecord``): each creates its trace or completes a
        provisional one; a root whose trace is already complete changes nothing.
        ``spans`` are the other spans, each stored once by ``(trace_id, id)``, whatever
        the state of its trace; a span whose trace id is unknown creates a provisional
        trace row (named after, and starting at, its earliest span; status "error" once
        any span failed) that lists and reads like any other trace until its root comes.
        Spans inside ``roots[i].spans`` are handled like ``spans``.

        Returns one flag per item of ``spans``: True when stored now, False when that
        ``(trace_id, id)`` was already stored (or repeated earlier in the call).
        """
        ...

    async def recent(self, query: ListQuery) -> Page:
        """A page of list entries; see ``ListQuery`` and ``Page``. Keyset paging: the
        cost of a page after a cursor does not grow with its depth."""
        ...

    async def get(self, trace_id: str) -> bytes | None:
        """The trace document, spans in the order they were stored; None if unknown."""
        ...

    async def names(self, limit: int = 200) -> list[str]:
        """Distinct trace names, alphabetically, for the viewer's filter."""
        ...

    async def ping(self) -> None:
        """Return when the database answers a query; ``StoreError`` otherwise."""
        ...

    async def revoke_session(self, session_id: str, expires: int) -> None:
        """Record that the browser session ``session_id`` ended (sign-out), for every
        process sharing the database, until ``expires`` (Unix seconds) after which the
        session's cookie is refused anyway."""
        ...

    async def session_revoked(self, session_id: str) -> bool:
        """True when ``revoke_session`` was called for ``session_id``."""
        ...


@attrs.frozen
class StoreFunctions:
    """A store's functions of ``(connection, *args)`` behind the calls ``StoreBase``
    implements: ``write(conn, roots, spans, whole) -> (root flags, span flags)``,
    ``select_page(conn, query) -> Page``, ``select_document(conn, trace_id)``."""

    write: Callable[..., Any]
    select_page: Callable[..., Any]
    select_document: Callable[..., Any]


class StoreBase:
    """The ``TraceStore`` calls every store makes the same way: one of its
    ``functions`` run on a connection by ``_on_db`` (the SQLite store's thread, the
    PostgreSQL store's pool)."""

    functions: ClassVar[StoreFunctions]

    @property
    def description(self) -> str:
        raise NotImplementedError

    def _is_open(self) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        state = "open" if self._is_open() else "closed"
        return f"<{type(self).__name__} {self.description!r} {state}>"

    async def _on_db(self, func: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    async def add(self, traces: Sequence[TraceRecord]) -> list[bool]:
        flags, _ = await self._on_db(self.functions.write, traces, (), True)
        return list(flags)

    async def add_spans(
        self, spans: Sequence[SpanRecord], roots: Sequence[TraceRecord] = ()
    ) -> list[bool]:
        _, flags = await self._on_db(self.functions.write, roots, spans, False)
        return list(flags)

    async def recent(self, query: ListQuery) -> Page:
        page: Page = await self._on_db(self.functions.select_page, query)
        return page

    async def get(self, trace_id: str) -> bytes | None:
        document: bytes | None = await self._on_db(self.functions.select_document, trace_id)
        return document


def encode_cursor(start_us: int, trace_id: str) -> str:
    """An opaque, URL-safe cursor for the position just after ``(start_us, id)``."""
    raw = orjson.dumps([start_us, trace_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> Cursor:
    """The position a cursor from ``encode_cursor`` stands for.

    Raises:
        ValueError: ``text`` is not such a cursor.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        start_us, trace_id = orjson.loads(raw)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValueError("cursor must be a nextCursor from this collector") from None
    if (
        isinstance(start_us, bool)
        or not isinstance(start_us, int)
        or not isinstance(trace_id, str)
        or not -(2**62) < start_us < 2**62
    ):
        raise ValueError("cursor must be a nextCursor from this collector")
    return Cursor(start_us, trace_id)


def is_postgres_url(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def open_store(db: str) -> TraceStore:
    """The store for ``--db``: PostgreSQL for a ``postgresql://`` URL, else SQLite.

    Raises:
        StoreError: a PostgreSQL URL without the ``aiotracing[postgres]`` extra installed.
    """
    if is_postgres_url(db):
        try:
            from ._postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                "a postgresql:// database needs the PostgreSQL driver: "
                "pip install 'aiotracing[postgres]'"
            ) from exc
        return PostgresStore(db)
    from ._sqlite import SqliteStore

    return SqliteStore(db)
