"""OTLP span attributes, written fast: encoded keys, heads by value length, and caches of
whole attributes for short values that repeat (models, providers, metadata).

The head of an attribute is everything before its value's bytes (the ``Span.attributes``
tag, the ``KeyValue`` length, the key, the ``AnyValue`` tag and length), so a string
attribute is two pieces, its head and its UTF-8, with no copy of the value. Used by
``_otlp_encode``; every cache here is bounded.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import orjson

from ._models import LlmUsage
from ._pb import VARINT_TABLE, varint
from ._wire import _OPTIONS, _fallback

__all__ = [
    "CALLS",
    "DESCRIPTION",
    "INPUT",
    "IN_JSON",
    "IN_SUMMARY",
    "IN_TEXT",
    "IN_TOKENS",
    "MODEL",
    "OUTPUT",
    "OUT_JSON",
    "OUT_SUMMARY",
    "OUT_TEXT",
    "OUT_TOKENS",
    "PROVIDER",
    "SPAN_ID",
    "TRACE_ID",
    "VN",
    "V",
    "json_text",
    "put_metadata",
    "put_text",
    "put_usage",
    "utf8",
    "vl",
]

V = VARINT_TABLE
VN = len(VARINT_TABLE)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DOUBLE = struct.Struct("<d").pack


def vl(n: int) -> bytes:
    return V[n] if n < VN else varint(n)


def utf8(value: object) -> bytes:
    """UTF-8 of a str (anything else: of its ``str()``); lone surrogates become '?'."""
    if type(value) is not str:
        value = str(value)
    return value.encode("utf-8", "replace")


def json_text(value: Any) -> bytes:
    """``value`` as JSON text (the wire format's encoder and fallbacks)."""
    try:
        return orjson.dumps(value, default=_fallback, option=_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        # orjson refuses integers over 64 bits and deep nesting; the stdlib does not.
        text = json.dumps(value, default=_fallback, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8", "replace")


class _Key:
    """A span attribute key: its encoded ``KeyValue.key``, the heads of its values by
    length, and (for keys whose values repeat) whole attributes by value."""

    __slots__ = ("bools", "double", "field", "heads", "ints", "limit", "values")

    def __init__(self, name: str, limit: int) -> None:
        data = name.encode("utf-8", "replace")
        self.field = b"\x0a" + vl(len(data)) + data
        self.limit = limit
        self.heads: dict[int, bytes] = {}
        self.values: dict[str, bytes] = {}
        # AnyValue.int_value (field 3) heads by the varint's length (1..10 bytes).
        self.ints = (b"", *(self._head(b"\x18", size) for size in range(1, 11)))
        self.double = self._head(b"\x21", 8)
        self.bools = tuple(self._head(b"\x10", 1) + bytes((flag,)) for flag in (0, 1))

    def _head(self, value_tag: bytes, size: int) -> bytes:
        """``Span.attributes`` tag, KeyValue length, key, value tag, AnyValue length."""
        any_len = len(value_tag) + size
        kv_len = len(self.field) + 1 + len(vl(any_len)) + any_len
        return b"\x4a" + vl(kv_len) + self.field + b"\x12" + vl(any_len) + value_tag

    def head(self, n: int) -> bytes:
        """The head of a string value of ``n`` UTF-8 bytes (cached by length)."""
        head = self.heads.get(n)
        if head is None:
            head = self._head(b"\x0a" + vl(n), n)  # AnyValue.string_value, n bytes
            if len(self.heads) >= self.limit:
                self.heads.clear()
            self.heads[n] = head
        return head

    def attr(self, value: str) -> bytes:
        """A whole string attribute, cached for short values (models, metadata)."""
        data = self.values.get(value)
        if data is None:
            raw = value.encode("utf-8", "replace")
            data = self.head(len(raw)) + raw
            if len(raw) <= 64:  # bounded memory: at most `limit` short values per key
                if len(self.values) >= self.limit:
                    self.values.clear()
                self.values[value] = data
        return data


INPUT, OUTPUT = _Key("input.value", 4096), _Key("output.value", 4096)
MODEL, PROVIDER = _Key("gen_ai.request.model", 256), _Key("gen_ai.provider.name", 256)
IN_TOKENS = _Key("gen_ai.usage.input_tokens", 0)
OUT_TOKENS = _Key("gen_ai.usage.output_tokens", 0)
CALLS = _Key("tracing.llm.api_calls_count", 0)
TRACE_ID, SPAN_ID = _Key("tracing.trace.id", 256), _Key("tracing.span.id", 256)
DESCRIPTION = _Key("tracing.description", 256)
IN_SUMMARY, OUT_SUMMARY = _Key("tracing.input_summary", 256), _Key("tracing.output_summary", 256)
_MIME = {
    (key, kind): _Key(f"{key}.mime_type", 0).attr(kind)
    for key in ("input", "output")
    for kind in ("text/plain", "application/json")
}
IN_TEXT, IN_JSON = _MIME["input", "text/plain"], _MIME["input", "application/json"]
OUT_TEXT, OUT_JSON = _MIME["output", "text/plain"], _MIME["output", "application/json"]
_META: dict[str, _Key] = {}
_META_KEYS = 256  # metadata keys cached at most (then the cache starts over)


def _meta_key(name: object) -> _Key:
    if type(name) is not str:  # not cached: 1 and True are one dict key, not one name
        return _Key(f"metadata.{name}", 0)
    key = _META.get(name)
    if key is None:
        if len(_META) >= _META_KEYS:
            _META.clear()
        key = _META[name] = _Key(f"metadata.{name}", 32)
    return key


def _put_int(out: list[bytes], key: _Key, value: int) -> None:
    if 0 <= value < VN:
        raw = V[value]
    elif _INT64_MIN <= value <= _INT64_MAX:
        raw = varint(value)
    else:  # beyond int64: the digits as text
        raw = str(value).encode()
        out.append(key.head(len(raw)))
        out.append(raw)
        return
    out.append(key.ints[len(raw)])
    out.append(raw)


def _put_value(out: list[bytes], key: _Key, value: Any) -> None:
    """A metadata value: str, bool, int64 and float natively, anything else as JSON."""
    kind = type(value)
    if kind is str:
        out.append(key.attr(value))
    elif kind is bool:
        out.append(key.bools[value])
    elif kind is int:
        _put_int(out, key, value)
    elif kind is float:
        out.append(key.double + _DOUBLE(value))
    elif isinstance(value, str):  # subclasses (StrEnum, ...)
        out.append(key.attr(str.__str__(value)))
    elif isinstance(value, int) and not isinstance(value, bool):
        _put_int(out, key, int(value))
    elif isinstance(value, float):
        out.append(key.double + _DOUBLE(float(value)))
    else:
        raw = json_text(value)
        out.append(key.head(len(raw)))
        out.append(raw)


def put_metadata(out: list[bytes], metadata: Any) -> None:
    if type(metadata) is not dict and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    add, keys = out.append, _META
    for name, item in metadata.items():
        key = keys.get(name) or _meta_key(name)
        if type(item) is str:
            add(key.values.get(item) or key.attr(item))
        else:
            _put_value(out, key, item)


def put_usage(out: list[bytes], usage: LlmUsage) -> None:
    model, provider = usage.model, usage.provider
    if type(model) is not str:
        model = str(model)
    if type(provider) is not str:
        provider = str(provider)
    out.append(MODEL.values.get(model) or MODEL.attr(model))
    out.append(PROVIDER.values.get(provider) or PROVIDER.attr(provider))
    _put_value(out, IN_TOKENS, usage.prompt_tokens)
    _put_value(out, OUT_TOKENS, usage.completion_tokens)
    _put_value(out, CALLS, usage.api_calls_count)


def put_text(out: list[bytes], key: _Key, value: object) -> None:
    raw = utf8(value)
    out.append(key.head(len(raw)))
    out.append(raw)
