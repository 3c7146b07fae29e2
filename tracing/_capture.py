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

__all__ = ["MAX_CAPTURE_BYTES", "TRUNCATED_MARKER", "capture", "snapshot", "snapshot_arguments"]

MAX_CAPTURE_BYTES = 16 * 1024
TRUNCATED_MARKER = "...[truncated by tracing: {size} bytes of JSON]"
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
# As in _wire: string keys only first (faster), then _OPTIONS for a value with other keys.
_STR_KEYS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_dumps, _loads, _Fragment = orjson.dumps, orjson.loads, orjson.Fragment


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic v2 models, without importing it
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            pass
    return _fallback(value)


def _try_encode(value: Any) -> bytes:
    """orjson's bytes for ``value``; raises what orjson raises for what it refuses."""
    try:
        return _dumps(value, default=_default, option=_STR_KEYS_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: a non-string key, say
        return _dumps(value, default=_default, option=_OPTIONS)


def _encode(value: Any) -> bytes:
    try:
        return _try_encode(value)
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
    return _truncated(encoded, limit)


def _truncated(encoded: bytes, limit: int) -> str:
    marker = TRUNCATED_MARKER.format(size=len(encoded))
    head = encoded[: max(limit - len(marker), 0)].decode("utf-8", "ignore")
    return head + marker


def snapshot(value: Any, limit: int = MAX_CAPTURE_BYTES) -> Any:
    """``capture(value)`` kept as its JSON: an ``orjson.Fragment`` instead of decoded objects.

    The same snapshot (taken now, size-capped, never raising) without the decoding:
    ``Trace``/``Span`` decode a fragment in ``input``/``output`` when the field is first
    read (``mask``, the user, the OTLP encoder), and the JSON encoder writes it as it is,
    so a value nobody reads is encoded once, not encoded, decoded and encoded again.
    """
    if value is None or (type(value) in (int, float, bool)):
        return value
    if type(value) is str and len(value) * 6 + 2 <= limit:
        return value
    encoded = _encode(value)
    if len(encoded) <= limit:
        # A right-sized copy: orjson's own bytes keep its ~4 KB output buffer (_wire).
        return _Fragment(bytes(memoryview(encoded)))
    return _truncated(encoded, limit)


def snapshot_arguments(arguments: dict[str, Any], limit: int = MAX_CAPTURE_BYTES) -> Any:
    """The snapshot of a call's bound arguments: what ``{k: capture(v)}`` records.

    One encoding of the whole dict, held as a fragment, when its JSON is within ``limit``
    (each value's JSON is then within it too, and the keys are parameter names: the same
    JSON the per-value snapshots would give). Otherwise, or when orjson refuses a value,
    each value is captured alone, so the cap and the ``repr`` fallback apply per value.
    """
    if not arguments:
        return {}
    try:
        encoded = _try_encode(arguments)
    except Exception:
        encoded = None
    if encoded is not None and len(encoded) <= limit:
        return _Fragment(bytes(memoryview(encoded)))
    return {key: capture(value, limit) for key, value in arguments.items()}
