"""What an LLM span keeps of the content: base64 payloads replaced by a short marker.

A request may carry images or audio as base64 (OpenAI ``data:`` URLs, Anthropic
``{"type": "base64", "data": ...}`` sources). Megabytes of base64 would fill the 16 KiB
capture cap and hide the prompt around them, so each becomes ``<image/png base64, N
bytes>``. The walk copies only the containers it changes; everything else is shared and
then snapshotted by ``_capture.capture`` (which applies the size cap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from .._capture import MAX_CAPTURE_BYTES, capture
from ._shapes import SENTINELS

__all__ = [
    "freeze",
    "freeze_field",
    "input_snapshot",
    "output_snapshot",
    "snapshot",
    "strip_base64",
    "thaw",
]

_dumps, _loads = orjson.dumps, orjson.loads


class _Shaped:
    """A request input orjson could not take as it is: shaped at call time instead."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def freeze(raw: Any, shape: Callable[[Any], Any]) -> Any:
    """The request's input pieces ``raw`` as they are now, for ``thaw`` to shape later:
    their JSON (one C call, however the caller changes its messages afterwards), or,
    when orjson cannot write them as they are (a non-string key, an SDK object, an int
    over 64 bits), ``shape(raw)`` now."""
    if raw is None:
        return None
    try:
        return _dumps(raw)
    except Exception:
        return _Shaped(shape(raw))


def freeze_field(body: Mapping[str, Any], key: str, shape: Callable[[Any], Any]) -> Any:
    """``freeze(given(body, key), shape)`` in one step (this runs cold, once per call)."""
    raw = body.get(key)
    if raw is None or type(raw).__name__ in SENTINELS:
        return None
    try:
        return _dumps(raw)
    except Exception:
        return _Shaped(shape(raw))


def thaw(frozen: Any, shape: Callable[[Any], Any]) -> Any:
    """What the span records of a ``freeze``d input: ``shape`` of what was sent."""
    if type(frozen) is bytes:
        return shape(_loads(frozen))
    if type(frozen) is _Shaped:
        return frozen.value
    return None


_MAX_DEPTH = 12


def _marker(media_type: str, data: str) -> str:
    size = len(data) * 3 // 4 - (2 if data.endswith("==") else 1 if data.endswith("=") else 0)
    return f"<{media_type or 'data'} base64, {size} bytes>"


def _data_url(value: str) -> str | None:
    if not value.startswith("data:"):
        return None
    head, sep, data = value.partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return _marker(head[5:-7], data)


def _plain_messages(value: Any) -> bool:
    """Messages whose contents are all strings: nothing to replace (the common case)."""
    if type(value) is not list:
        return False
    for message in value:
        if type(message) is not dict or type(message.get("content")) is not str:
            return False
    return True


def strip_base64(value: Any, depth: int = 0) -> Any:
    """``value`` with every base64 data URL or base64 source replaced by a marker."""
    if depth == 0 and _plain_messages(value):
        return value
    if type(value) is str:
        if len(value) > 64:
            marker = _data_url(value)
            if marker is not None:
                return marker
        return value
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return _strip_dict(value, depth)
    if isinstance(value, list | tuple):
        items = [strip_base64(item, depth + 1) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items
    return value


def _strip_dict(value: dict[Any, Any], depth: int) -> dict[Any, Any]:
    changed: dict[Any, Any] | None = None
    for key, item in value.items():
        if key == "data" and type(item) is str and len(item) > 64 and _is_base64_source(value):
            new: Any = _marker(str(value.get("media_type") or value.get("format") or ""), item)
        else:
            new = strip_base64(item, depth + 1)
        if new is not item:
            if changed is None:
                changed = dict(value)
            changed[key] = new
    return value if changed is None else changed


def _is_base64_source(value: dict[Any, Any]) -> bool:
    # Anthropic image/document sources; OpenAI input_audio {"data", "format"}.
    return value.get("type") == "base64" or "format" in value


_NUMBERS = (int, float, bool, type(None))
_ESCAPED = 6  # JSON escapes take at most 6 bytes a character


def _flat_size(record: dict[Any, Any]) -> int:
    """JSON-size bound of a dict of str keys and scalar values; -1 if it is not one."""
    size = 0
    for key, value in record.items():
        kind = type(value)
        if type(key) is not str or (kind is not str and kind not in _NUMBERS):
            return -1
        size += len(key) + (len(value) if kind is str else 24) + 4
    return size * _ESCAPED


def input_snapshot(value: Any) -> Any:
    """What a span records of a request's messages (or prompt, or input): a snapshot
    with base64 payloads replaced by markers, within the capture cap.

    Most requests carry a short list of messages whose values are all strings: those
    are copied in one pass (so later changes do not show). Anything else goes through
    ``strip_base64`` and ``snapshot``."""
    if type(value) is list and len(value) <= 64:
        size = 0
        for message in value:
            if type(message) is not dict or type(message.get("content")) is not str:
                break
            for key, item in message.items():
                kind = type(item)
                if type(key) is not str or (kind is not str and kind not in _NUMBERS):
                    break
                size += len(key) + (len(item) if kind is str else 24) + 4
            else:
                continue
            break
        else:
            if size * _ESCAPED <= MAX_CAPTURE_BYTES:
                return list(map(dict, value))
    return snapshot(strip_base64(value))


def output_snapshot(output: Any) -> Any:
    """What a span records of the output the endpoint built: as it is when it is one
    message of short text (a dict made here that nothing else holds), else through
    ``snapshot`` (tool-call arguments are the SDK's objects; the cap applies)."""
    if output is None:
        return None
    if type(output) is dict and len(output) == 2:  # role and content: no tool calls
        content = output.get("content")
        if content is None or (
            type(content) is str and (len(content) + 32) * _ESCAPED <= MAX_CAPTURE_BYTES
        ):
            return output
    return snapshot(output)


def snapshot(value: Any) -> Any:
    """``capture(value)``, without its JSON round trip for a message dict, or a list of
    them, holding only scalars and small enough to need no cut. Those are copied (so
    later changes do not show); anything else goes through ``capture`` (JSON snapshot
    and the 16 KiB cap)."""
    if type(value) is dict:
        size = _flat_size(value)
        if 0 <= size <= MAX_CAPTURE_BYTES:
            return dict(value)
    elif type(value) is list and len(value) <= 64:
        total = 0
        for item in value:
            size = _flat_size(item) if type(item) is dict else -1
            if size < 0:
                return capture(value)
            total += size
        if total <= MAX_CAPTURE_BYTES:
            return list(map(dict, value))
    return capture(value)
