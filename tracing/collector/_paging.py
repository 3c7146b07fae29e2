"""Turning the rows of a list query into a ``Page``, the same way on every store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._records import provisional_item, with_totals
from ._storage import ListQuery, Page, encode_cursor

__all__ = ["list_item", "page_of"]


def page_of(query: ListQuery, total: int, rows: Sequence[Sequence[Any]]) -> Page:
    """A Page from up to ``limit + 1`` rows of ``_LIST_COLUMNS`` (either store), read
    newest first, or oldest first for ``before``."""
    more = len(rows) > query.limit
    rows = list(rows[: query.limit])
    if query.before is not None:
        rows.reverse()
        after, before = bool(rows), more
    else:
        after, before = more, query.cursor is not None or query.offset > 0
    items = [list_item(*row) for row in rows]
    return Page(
        total=total,
        items=items,
        next_cursor=encode_cursor(rows[-1][1], rows[-1][0]) if after and rows else None,
        prev_cursor=encode_cursor(rows[0][1], rows[0][0]) if before and rows else None,
    )


def list_item(
    trace_id: str,
    start_us: int,
    item: bytes | None,
    name: str,
    status: str,
    usage_tokens: int | None,
    span_tokens: int,
    span_count: int,
) -> bytes:
    """A list entry from a row of either store (``item`` is NULL while provisional)."""
    if item is None:
        item = provisional_item(trace_id, name, start_us, status)
    tokens = usage_tokens if usage_tokens is not None else span_tokens
    return with_totals(bytes(item), tokens, span_count)
