"""The OTLP mapping: a ``Trace`` as the protobuf bytes of its spans (README, "OTLP").

``encode_spans(trace)`` returns the trace's ``ScopeSpans.spans`` fields: its root span,
then one span per ``Span``. ``request_envelope`` wraps the spans of a batch into an
``ExportTraceServiceRequest`` with one resource and one scope.

This is the SDK's hot path in OTLP mode, so it is written for CPython's speed rather than
for symmetry: constant keys are encoded once, the head of an attribute (tags and lengths
before the value's bytes) is looked up by the value's length, short repeated values
(models, providers, metadata) are cached whole, and each span is one ``bytes.join``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from ._models import LlmUsage, Span, Trace, _get_spans, _get_tags
from ._pb import VARINT_TABLE, key_value, length_delimited, varint
from ._wire import _OPTIONS, _fallback

__all__ = ["encode_spans", "json_text", "request_envelope", "span_id", "trace_id"]

_V = VARINT_TABLE
_VN = len(VARINT_TABLE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
# kind INTERNAL (field 6 = 1), start_time_unix_nano (7, fixed64), end_time_unix_nano (8).
_KIND_AND_TIMES = struct.Struct("<BBBQBQ").pack
_sha256 = hashlib.sha256


def _vl(n: int) -> bytes:
    return _V[n] if n < _VN else varint(n)


def _text(value: object) -> bytes:
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


# Ids -----------------------------------------------------------------------------------


def _hex_bytes(value: str) -> bytes | None:
    """The 16 bytes of a 32-hex-digit id (either case), else None."""
    if len(value) != 32:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if len(raw) == 16 else None  # fromhex() skips whitespace


def _digest(value: str) -> bytes:
    return _sha256(value.encode("utf-8", "surrogatepass")).digest()


def trace_id(value: str) -> bytes:
    """OTLP trace id: a 32-hex id's 16 bytes, else the first 16 bytes of its SHA-256."""
    return _hex_bytes(value) or _digest(value)[:16]


def span_id(value: str) -> bytes:
    """OTLP span id: a 32-hex id's first 8 bytes, else the first 8 of its SHA-256."""
    if len(value) == 32:  # _hex_bytes() inlined: once per span
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            pass
        else:
            if len(raw) == 16:
                return raw[:8]
    return _digest(value)[:8]


# Attribute keys ------------------------------------------------------------------------


class _Key:
    """A span attribute key: its encoded ``KeyValue.key``, the heads of its values by
    length, and (for keys whose values repeat) whole attributes by value."""

    __slots__ = ("bools", "double", "field", "heads", "ints", "limit", "values")

    def __init__(self, name: str, limit: int) -> None:
        data = name.encode("utf-8", "replace")
        self.field = b"\x0a" + _vl(len(data)) + data
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
        kv_len = len(self.field) + 1 + len(_vl(any_len)) + any_len
        return b"\x4a" + _vl(kv_len) + self.field + b"\x12" + _vl(any_len) + value_tag

    def head(self, n: int) -> bytes:
        """The head of a string value of ``n`` UTF-8 bytes (cached by length)."""
        head = self.heads.get(n)
        if head is None:
            head = self._head(b"\x0a" + _vl(n), n)  # AnyValue.string_value, n bytes
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


_INPUT, _OUTPUT = _Key("input.value", 4096), _Key("output.value", 4096)
_MODEL, _PROVIDER = _Key("gen_ai.request.model", 256), _Key("gen_ai.provider.name", 256)
_IN_TOKENS = _Key("gen_ai.usage.input_tokens", 0)
_OUT_TOKENS = _Key("gen_ai.usage.output_tokens", 0)
_CALLS = _Key("tracing.llm.api_calls_count", 0)
_TRACE_ID, _SPAN_ID = _Key("tracing.trace.id", 256), _Key("tracing.span.id", 256)
_DESCRIPTION = _Key("tracing.description", 256)
_IN_SUMMARY, _OUT_SUMMARY = _Key("tracing.input_summary", 256), _Key("tracing.output_summary", 256)
_MIME = {
    (key, kind): _Key(f"{key}.mime_type", 0).attr(kind)
    for key in ("input", "output")
    for kind in ("text/plain", "application/json")
}
_IN_TEXT, _IN_JSON = _MIME["input", "text/plain"], _MIME["input", "application/json"]
_OUT_TEXT, _OUT_JSON = _MIME["output", "text/plain"], _MIME["output", "application/json"]
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
    if 0 <= value < _VN:
        raw = _V[value]
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


def _put_metadata(out: list[bytes], metadata: Any) -> None:
    if type(metadata) is not dict and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    add, keys = out.append, _META
    for name, item in metadata.items():
        key = keys.get(name) or _meta_key(name)
        if type(item) is str:
            add(key.values.get(item) or key.attr(item))
        else:
            _put_value(out, key, item)


def _put_usage(out: list[bytes], usage: LlmUsage) -> None:
    model, provider = usage.model, usage.provider
    if type(model) is not str:
        model = str(model)
    if type(provider) is not str:
        provider = str(provider)
    out.append(_MODEL.values.get(model) or _MODEL.attr(model))
    out.append(_PROVIDER.values.get(provider) or _PROVIDER.attr(provider))
    _put_value(out, _IN_TOKENS, usage.prompt_tokens)
    _put_value(out, _OUT_TOKENS, usage.completion_tokens)
    _put_value(out, _CALLS, usage.api_calls_count)


def _put_text(out: list[bytes], key: _Key, value: object) -> None:
    raw = _text(value)
    out.append(key.head(len(raw)))
    out.append(raw)


# Spans ---------------------------------------------------------------------------------


def _error(out: list[bytes], error: object, end_ns: int) -> None:
    """Status ERROR with the message, and an ``exception`` event at the end time."""
    status = b"\x18\x02"
    event = b"\x09" + _FIXED64(end_ns) + b"\x12\x09exception"
    if error is not None:
        message = _text(error)
        status = b"\x12" + _vl(len(message)) + message + status
        event += length_delimited(3, key_value("exception.message", message.decode()))
    out.append(b"\x5a" + _vl(len(event)) + event)
    out.append(b"\x7a" + _vl(len(status)) + status)


def _record(out: list[bytes], record: Trace | Span) -> None:
    """What a trace's root span and every span share: times, attributes, status.

    Inlined by hand (no helper call for the common cases): this runs once per span.
    """
    add = out.append
    name = record.name
    raw = (name if type(name) is str else str(name)).encode("utf-8", "replace")
    size = len(raw)
    add(b"\x2a" + (_V[size] if size < _VN else varint(size)) + raw)
    # Exact integer nanoseconds (microseconds x 1000); the timedelta's fields are cheaper
    # than timedelta // timedelta.
    since = record.start_time - _EPOCH
    start = ((since.days * 86400 + since.seconds) * 1_000_000 + since.microseconds) * 1000
    end_time = record.end_time
    if end_time is None:
        end = start
    else:
        since = end_time - _EPOCH
        end = ((since.days * 86400 + since.seconds) * 1_000_000 + since.microseconds) * 1000
    add(_KIND_AND_TIMES(0x30, 1, 0x39, start, 0x41, end))
    value = record.input
    if value is not None:
        if type(value) is str:
            raw, mime = value.encode("utf-8", "replace"), _IN_TEXT
        else:
            raw, mime = json_text(value), _IN_JSON
        size = len(raw)
        out += (_INPUT.heads.get(size) or _INPUT.head(size), raw, mime)
    value = record.output
    if value is not None:
        if type(value) is str:
            raw, mime = value.encode("utf-8", "replace"), _OUT_TEXT
        else:
            raw, mime = json_text(value), _OUT_JSON
        size = len(raw)
        out += (_OUTPUT.heads.get(size) or _OUTPUT.head(size), raw, mime)
    usage = record.llm_usage
    if usage is not None:
        model, provider = usage.model, usage.provider
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
        calls = usage.api_calls_count
        if (  # the common case in one step; _put_usage() handles the rest
            type(model) is str
            and type(provider) is str
            and type(prompt) is int
            and type(completion) is int
            and type(calls) is int
            and 0 <= prompt < _VN
            and 0 <= completion < _VN
            and 0 <= calls < _VN
        ):
            out += (
                _MODEL.values.get(model) or _MODEL.attr(model),
                _PROVIDER.values.get(provider) or _PROVIDER.attr(provider),
                _IN_TOKENS.ints[1 if prompt < 128 else 2],
                _V[prompt],
                _OUT_TOKENS.ints[1 if completion < 128 else 2],
                _V[completion],
                _CALLS.ints[1 if calls < 128 else 2],
                _V[calls],
            )
        else:
            _put_usage(out, usage)
    metadata = record.metadata
    if metadata:
        _put_metadata(out, metadata)
    if record.status == "error":
        _error(out, record.error, end)


def _close(out: list[bytes], at: int) -> None:
    """Fill the placeholder at ``at`` with the ``ScopeSpans.spans`` tag and the length of
    the span written after it (one join per trace, not one per span)."""
    size = sum(map(len, out[at + 1 :]))
    out[at] = b"\x12" + (_V[size] if size < _VN else varint(size))


def _root_extras(out: list[bytes], trace: Trace) -> None:
    """The root span's own attributes besides ``tracing.trace.id``."""
    tags = _get_tags(trace)
    if tags:
        array = key_value("tracing.tags", [_text(tag).decode() for tag in tags])
        out.append(b"\x4a" + _vl(len(array)) + array)
    if trace.description is not None:
        _put_text(out, _DESCRIPTION, trace.description)
    if trace.input_summary is not None:
        _put_text(out, _IN_SUMMARY, trace.input_summary)
    if trace.output_summary is not None:
        _put_text(out, _OUT_SUMMARY, trace.output_summary)


def _child(out: list[bytes], span: Span, tid_field: bytes, root_id: bytes) -> None:
    at = len(out)
    sid = span.id if type(span.id) is str else str(span.id)
    parent = span.parent_id
    if parent is None:
        parent_raw = root_id
    else:
        parent_raw = span_id(parent if type(parent) is str else str(parent))
    raw = sid.encode("utf-8", "replace")
    out += (
        b"",
        tid_field + b"\x12\x08" + span_id(sid) + b"\x22\x08" + parent_raw,
        _SPAN_ID.heads.get(len(raw)) or _SPAN_ID.head(len(raw)),
        raw,
    )
    _record(out, span)
    _close(out, at)


def encode_spans(trace: Trace) -> bytes:
    """The trace's spans as ``ScopeSpans.spans`` fields: the root, then each span.

    Raises:
        TypeError, ValueError, RecursionError: a value that cannot be encoded.
    """
    text = trace.id if type(trace.id) is str else str(trace.id)
    tid = _hex_bytes(text) or _digest(text)[:16]
    # The span-id rule on the trace id: a 32-hex id's first 8 bytes, else SHA-256[:8],
    # which is (SHA-256[:16])[:8]: the trace id's first 8 bytes either way.
    root_id = tid[:8]
    tid_field = b"\x0a\x10" + tid
    raw = text.encode("utf-8", "replace")
    # The root span; out[0] is its tag and length, filled in once its size is known.
    head = _TRACE_ID.heads.get(len(raw)) or _TRACE_ID.head(len(raw))
    out = [b"", tid_field + b"\x12\x08" + root_id, head, raw]
    _record(out, trace)
    if (
        _get_tags(trace)
        or trace.description is not None
        or trace.input_summary is not None
        or trace.output_summary is not None
    ):
        _root_extras(out, trace)
    _close(out, 0)
    spans = _get_spans(trace)
    if spans:
        for span in spans:
            _child(out, span, tid_field, root_id)
    return b"".join(out)


def request_envelope(resource: bytes, scope: bytes, spans_size: int) -> bytes:
    """The bytes of an ``ExportTraceServiceRequest`` before its spans.

    ``resource`` and ``scope`` are the encoded ``ResourceSpans.resource`` and
    ``ScopeSpans.scope`` fields; ``spans_size`` is the length of all the spans' fields.
    """
    scope_spans = len(scope) + spans_size
    resource_spans = len(resource) + 1 + len(_vl(scope_spans)) + scope_spans
    return b"\x0a" + _vl(resource_spans) + resource + b"\x12" + _vl(scope_spans) + scope
