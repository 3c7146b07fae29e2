"""Untrusted JSON in, Python values out, whatever the shape: nothing here can raise
anything but ``ValueError``, and one bad value never costs the rest of the body.

orjson parses nearly every body. What it refuses that is still JSON (RFC 8259) gets a
second, slower try: values nested beyond orjson's 1,024 levels are cut down first (the
validator rejects their trace for depth anyway, and keeps its id to name it), then the
standard library parses the text, lone surrogate escapes included (the trace holding one
is rejected when it is stored, not the batch).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["MAX_DEPTH", "depth_over", "describe", "loads"]

MAX_DEPTH = 128
# Containers opening at this depth of the body are replaced by [] in the second try:
# deep enough that the trace holding one still breaks MAX_DEPTH, shallow enough for json.
_CUT = 200
_OPEN_OR_QUOTE = re.compile(r'["\[\]{}]')
# The rest of a string after its opening quote; possessive, so it never backtracks.
_STRING_REST = re.compile(r'(?:[^"\\]|\\.)*+"', re.DOTALL)
_MAX_INT_DIGITS = 20


class _Unstorable:
    """An integer too long for any store (json would build it; nothing could save it)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def loads(body: bytes) -> Any:
    """The value of a JSON body.

    Raises:
        ValueError: the body is not UTF-8 JSON (orjson's message).
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        first = ValueError(str(exc))
    try:
        text = body.decode("utf-8")
        return json.loads(_cut_deep(text), parse_constant=_refuse, parse_int=_int)
    except (ValueError, RecursionError):
        raise first from None


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int(text: str) -> int | _Unstorable:
    return int(text) if len(text) <= _MAX_INT_DIGITS else _Unstorable(text)


def _cut_deep(text: str) -> str:
    """``text`` with every container that opens at depth ``_CUT`` replaced by ``[]``."""
    out: list[str] = []
    depth = 0
    pos = 0
    kept = 0  # text[:kept] is already in out
    cut_at = -1
    while found := _OPEN_OR_QUOTE.search(text, pos):
        char = found.group()
        pos = found.end()
        if char == '"':
            rest = _STRING_REST.match(text, pos)
            if rest is None:
                break  # an unterminated string: json says where
            pos = rest.end()
        elif char in "[{":
            depth += 1
            if depth == _CUT and cut_at < 0:
                cut_at = found.start()
        else:
            if depth == _CUT and cut_at >= 0:
                out += [text[kept:cut_at], "[]"]
                kept, cut_at = pos, -1
            depth -= 1
    out.append(text[kept:])
    return "".join(out)


def depth_over(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``value`` nests containers more than ``limit`` levels (``[]`` is one)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def describe(value: Any) -> str:
    """A short, safe rendering of an untrusted value for a message (never a deep repr)."""
    if isinstance(value, str):
        return repr(value[:60]) + ("..." if len(value) > 60 else "")
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, _Unstorable):
        return f"an integer of {len(value.text)} digits"
    return "an object" if isinstance(value, dict) else f"a {type(value).__name__}"
