"""Checks of the record arguments of ``tracer.trace()`` and ``trace.span()``.

Called only when the argument is given (truthy), so the common call pays nothing. Bad
values are ``ValueError`` naming the argument, like every other bad argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["check_end_time", "metadata_arg", "tags_arg", "tags_or_none"]


def metadata_arg(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``metadata`` as a dict.

    Raises:
        ValueError: it is not a mapping.
    """
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata must be a mapping or None, got {metadata!r}")
    return dict(metadata)


def tags_arg(tags: Iterable[str]) -> list[str]:
    """``tags`` as a list of strings.

    Raises:
        ValueError: it is a single string (which would become one tag per character),
            not iterable, or holds something other than strings.
    """
    if isinstance(tags, str | bytes) or not isinstance(tags, Iterable):
        raise ValueError(f"tags must be an iterable of strings or None, got {tags!r}")
    out = list(tags)
    for tag in out:
        if not isinstance(tag, str):
            raise ValueError(f"tags must hold strings only, got {tag!r}")
    return out


def tags_or_none(tags: Iterable[str] | None) -> list[str] | None:
    """The ``Trace(tags=...)`` converter: None stays None (the list is made on first read)."""
    return None if tags is None else tags_arg(tags)


def check_end_time(record: Any, _attribute: Any, end: datetime | None) -> None:
    """The ``end_time`` validator of a record built directly (run once all fields are set).

    Raises:
        ValueError: ``end_time`` is before ``start_time``, which no receiver accepts.
    """
    if end is not None and end < record.start_time:
        raise ValueError(
            f"end_time must not be before start_time ({record.start_time.isoformat()}), "
            f"got {end.isoformat()}"
        )
