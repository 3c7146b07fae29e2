"""Query strings: which parameters each route takes, and the trace list's values.

A parameter a route does not know, one given twice, or a bad value is a 400 naming it,
so that a typo in a filter is never read as "everything". An empty value (``name=``, as
an empty form field sends it) means the parameter was not given.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import MultiMapping

from ._storage import Cursor, ListQuery, decode_cursor

__all__ = ["MAX_LIMIT", "QueryError", "check_query", "list_query"]

MAX_LIMIT = 1000
_MAX_OFFSET = 2**62
_LIST = frozenset({"limit", "offset", "name", "status", "cursor"})
# Route (canonical path) -> the parameters it takes; a route not listed takes none.
PARAMETERS: Mapping[str, frozenset[str]] = {
    "/api/traces": _LIST,
    "/": _LIST | {"before"},
    "/signin": frozenset({"next"}),
}
STATUSES = ("ok", "error")


class QueryError(ValueError):
    """A query string the route cannot take; the message names the parameter."""


def check_query(route: str, query: MultiMapping[str]) -> None:
    """Raise QueryError for a parameter ``route`` does not take, or one given twice."""
    allowed = PARAMETERS.get(route, frozenset())
    for name in query:
        if name not in allowed:
            takes = ", ".join(sorted(allowed)) if allowed else "no query parameters"
            raise QueryError(f"unknown query parameter {name!r:.80} (this route takes {takes})")
        if len(query.getall(name)) > 1:
            raise QueryError(f"query parameter {name!r} is given more than once")


def _int(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    # The length first: int() refuses more than 4,300 digits with a ValueError (a 500).
    digits = text.isascii() and text.isdigit() and len(text) <= 19
    if not digits or not low <= int(text) <= high:
        raise QueryError(f"{name} must be an integer from {low} to {high}, got {text!r:.40}")
    return int(text)


def list_query(query: MultiMapping[str], default_limit: int) -> ListQuery:
    """The trace list's ``limit``, ``offset``, ``name``, ``status`` and ``cursor``.

    Raises:
        QueryError: a value out of range or not understood, naming its parameter.
    """
    limit = _int(query, "limit", default_limit, 1, MAX_LIMIT)
    offset = _int(query, "offset", 0, 0, _MAX_OFFSET)
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise QueryError(f"status must be 'ok' or 'error', got {status!r:.40}")
    cursor, before = _cursor(query, "cursor"), _cursor(query, "before")
    if cursor is not None and before is not None:
        raise QueryError("give cursor or before, not both")
    return ListQuery(
        limit=limit,
        offset=offset,
        name=query.get("name") or None,
        status=status,
        cursor=cursor,
        before=before,
    )


def _cursor(query: MultiMapping[str], name: str) -> Cursor | None:
    text = query.get(name) or None
    try:
        return None if text is None else decode_cursor(text)
    except ValueError:
        raise QueryError(f"{name} must be a nextCursor from this collector") from None
