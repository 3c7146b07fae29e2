"""Snapshots of captured arguments and return values, with a size cap.

``@observe`` records what a call received and returned. Holding the live objects would
keep them in memory until the trace is sent and record later mutations, so each value
is snapshotted at once: encoded to JSON, and decoded back when it is small enough. A
value whose JSON is larger than ``MAX_CAPTURE_BYTES`` becomes a string: the start of its
JSON followed by a marker saying how large it was, so neither memory nor the request
body grows with a huge argument.
"""

from __future__ import annotations

from typing import Any

import orjson

from ._wire import _fallback

__all__ = ["MAX_CAPTURE_BYTES", "TRUNCATED_MARKER", "capture"]

MAX_CAPTURE_BYTES = 16 * 1024
TRUNCATED_MARKER = "...[truncated by tracing: {size} bytes of JSON]"
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
# As in _wire: string keys only first (faster), then _OPTIONS for a value with other keys.
_STR_KEYS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_dumps, _loads = orjson.dumps, orjson.loads


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic v2 models, without importing it
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            pass
    return _fallback(value)


def _encode(value: Any) -> bytes:
    try:
        try:
            return _dumps(value, default=_default, option=_STR_KEYS_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: a non-string key, say
            return _dumps(value, default=_default, option=_OPTIONS)
    except Exception:  # >64-bit ints, deep nesting, a failing __str__: keep a repr
        try:
            text = repr(value)
        except Exception:
            text = f"<unrepresentable {type(value).__name__}>"
        return orjson.dumps(text)


def capture(value: Any, limit: int = MAX_CAPTURE_BYTES) -> Any:
    """A JSON-safe snapshot of ``value``, or a truncated string if its JSON is too large.

    Never raises: what cannot be encoded is captured as its ``repr()``.
    """
    if value is None or (type(value) in (int, float, bool)):
        return value
    if type(value) is str and len(value) * 6 + 2 <= limit:  # JSON escapes: <= 6 bytes a char
        return value
    encoded = _encode(value)
    if len(encoded) <= limit:
        return _loads(encoded)
    marker = TRUNCATED_MARKER.format(size=len(encoded))
    head = encoded[: max(limit - len(marker), 0)].decode("utf-8", "ignore")
    return head + marker
