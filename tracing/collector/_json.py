"""Untrusted JSON in, Python values out, whatever the shape: nothing here can raise
anything but ``ValueError``, and one bad value never costs the rest of the body.

orjson parses nearly every body. What it refuses that is still JSON (RFC 8259) gets a
second, slower try: values nested beyond orjson's 1,024 levels are cut down first (the
validator rejects their trace for depth anyway, and keeps its id to name it), then the
standard library parses the text, lone surrogate escapes and numbers past a double's
range (``1e400``) included (the trace holding one is rejected when it is stored, not the
batch).
"""

from __future__ import annotations

import json
import math
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
# orjson's messages for what is JSON but beyond orjson: depth, and lone surrogates.
_SECOND_TRY = re.compile(r"depth limit|surrogate|infinity")


class _Unstorable:
    """A number no store can hold: an integer too long, or one past a double's range
    (json would build it; nothing could save it)."""

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
    if not _SECOND_TRY.search(str(first)):
        raise first  # not JSON at all: no slower parse of up to --max-body bytes for it
    try:
        text = body.decode("utf-8")
        return json.loads(
            _cut_deep(text), parse_constant=_refuse, parse_int=_int, parse_float=_float
        )
    except (ValueError, RecursionError):
        raise first from None


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int(text: str) -> int | _Unstorable:
    return int(text) if len(text) <= _MAX_INT_DIGITS else _Unstorable(text)


def _float(text: str) -> float | _Unstorable:
    """A number past a double's range (``1e400``) is JSON, but no store can hold it."""
    value = float(text)
    return value if math.isfinite(value) else _Unstorable(text)


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
    """True when ``value`` nests containers more than ``limit`` levels (``[]`` is one).

    orjson counts depth in C while it encodes, and refuses more than its own limit; with
    ``value`` placed under ``_ORJSON_DEPTH - limit`` lists, that refusal is exactly this
    rule. It is ~30 times faster than walking the value in Python (measured: 17 vs 550 µs
    for a 3 KB input), and ingest runs it on every container field of every trace.
    """
    if not isinstance(value, dict | list):
        return False
    if _ORJSON_DEPTH is None or limit != MAX_DEPTH:
        return _walk_over(value, limit)
    _HOLE[0] = value
    try:
        orjson.dumps(_WRAPPED)
    except orjson.JSONEncodeError as exc:
        # Anything but depth (a lone surrogate, an _Unstorable) is for the store to refuse.
        return "Recursion" in str(exc)
    finally:
        _HOLE[0] = None
    return False


def _walk_over(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def _nest(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _orjson_depth() -> int | None:
    """orjson.dumps' depth limit (254 in orjson 3.x), or None if it is not that."""
    try:
        orjson.dumps(_nest(254))
    except orjson.JSONEncodeError:
        return None
    try:
        orjson.dumps(_nest(255))
    except orjson.JSONEncodeError:
        return 254
    return None


_ORJSON_DEPTH = _orjson_depth()
# _WRAPPED is _ORJSON_DEPTH - MAX_DEPTH lists around _HOLE's one slot (the event loop's
# thread is the only caller, so one shared chain serves every check).
_HOLE: list[Any] = [None]
_WRAPPED: list[Any] = _HOLE
for _ in range((_ORJSON_DEPTH or MAX_DEPTH + 1) - MAX_DEPTH - 1):
    _WRAPPED = [_WRAPPED]


def describe(value: Any) -> str:
    """A short, safe rendering of an untrusted value for a message (never a deep repr)."""
    if isinstance(value, str):
        return repr(value[:60]) + ("..." if len(value) > 60 else "")
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, _Unstorable):
        return f"the number {value.text[:40]}"
    return "an object" if isinstance(value, dict) else f"a {type(value).__name__}"
