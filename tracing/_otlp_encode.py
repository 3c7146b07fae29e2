"""The OTLP mapping: a ``Trace`` as the protobuf bytes of its spans (README, "OTLP").

``encode_spans(trace)`` returns the trace's ``ScopeSpans.spans`` fields: its root span,
then one span per ``Span``. ``request_envelope`` wraps the spans of a batch into an
``ExportTraceServiceRequest`` with one resource and one scope.

This is the SDK's hot path in OTLP mode, so it is written for CPython's speed rather than
for symmetry: attributes come from ``_otlp_attrs`` (keys encoded once, heads by length,
short repeated values cached whole), the common cases are inlined, and each span is one
``bytes.join`` of its pieces.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime

from ._models import Span, Trace, _get_spans, _get_tags
from ._otlp_attrs import (
    CALLS,
    DESCRIPTION,
    IN_JSON,
    IN_SUMMARY,
    IN_TEXT,
    IN_TOKENS,
    INPUT,
    MODEL,
    OUT_JSON,
    OUT_SUMMARY,
    OUT_TEXT,
    OUT_TOKENS,
    OUTPUT,
    PROVIDER,
    SPAN_ID,
    TRACE_ID,
    VN,
    V,
    json_text,
    put_metadata,
    put_text,
    put_usage,
    utf8,
    vl,
)
from ._pb import key_value, length_delimited, varint

__all__ = ["encode_spans", "json_text", "request_envelope", "span_id", "trace_id"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIXED64 = struct.Struct("<Q").pack
# kind INTERNAL (field 6 = 1), start_time_unix_nano (7, fixed64), end_time_unix_nano (8).
_KIND_AND_TIMES = struct.Struct("<BBBQBQ").pack
_sha256 = hashlib.sha256


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


# Spans ---------------------------------------------------------------------------------


def _error(out: list[bytes], error: object, end_ns: int) -> None:
    """Status ERROR with the message, and an ``exception`` event at the end time."""
    status = b"\x18\x02"
    event = b"\x09" + _FIXED64(end_ns) + b"\x12\x09exception"
    if error is not None:
        message = utf8(error)
        status = b"\x12" + vl(len(message)) + message + status
        event += length_delimited(3, key_value("exception.message", message.decode()))
    out.append(b"\x5a" + vl(len(event)) + event)
    out.append(b"\x7a" + vl(len(status)) + status)


def _record(out: list[bytes], record: Trace | Span) -> None:
    """What a trace's root span and every span share: times, attributes, status.

    Inlined by hand (no helper call for the common cases): this runs once per span.
    """
    add = out.append
    name = record.name
    raw = (name if type(name) is str else str(name)).encode("utf-8", "replace")
    size = len(raw)
    add(b"\x2a" + (V[size] if size < VN else varint(size)) + raw)
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
            raw, mime = value.encode("utf-8", "replace"), IN_TEXT
        else:
            raw, mime = json_text(value), IN_JSON
        size = len(raw)
        out += (INPUT.heads.get(size) or INPUT.head(size), raw, mime)
    value = record.output
    if value is not None:
        if type(value) is str:
            raw, mime = value.encode("utf-8", "replace"), OUT_TEXT
        else:
            raw, mime = json_text(value), OUT_JSON
        size = len(raw)
        out += (OUTPUT.heads.get(size) or OUTPUT.head(size), raw, mime)
    usage = record.llm_usage
    if usage is not None:
        model, provider = usage.model, usage.provider
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
        calls = usage.api_calls_count
        if (  # the common case in one step; put_usage() handles the rest
            type(model) is str
            and type(provider) is str
            and type(prompt) is int
            and type(completion) is int
            and type(calls) is int
            and 0 <= prompt < VN
            and 0 <= completion < VN
            and 0 <= calls < VN
        ):
            out += (
                MODEL.values.get(model) or MODEL.attr(model),
                PROVIDER.values.get(provider) or PROVIDER.attr(provider),
                IN_TOKENS.ints[1 if prompt < 128 else 2],
                V[prompt],
                OUT_TOKENS.ints[1 if completion < 128 else 2],
                V[completion],
                CALLS.ints[1 if calls < 128 else 2],
                V[calls],
            )
        else:
            put_usage(out, usage)
    metadata = record.metadata
    if metadata:
        put_metadata(out, metadata)
    if record.status == "error":
        _error(out, record.error, end)


def _field(parts: list[bytes]) -> bytes:
    """One span as a ``ScopeSpans.spans`` field: tag, length, then its ``parts`` joined
    (a join and a copy are cheaper than summing the parts' lengths)."""
    body = b"".join(parts)
    size = len(body)
    return b"\x12" + (V[size] if size < VN else varint(size)) + body


def _root_extras(out: list[bytes], trace: Trace) -> None:
    """The root span's own attributes besides ``tracing.trace.id``."""
    tags = _get_tags(trace)
    if tags:
        array = key_value("tracing.tags", [utf8(tag).decode() for tag in tags])
        out.append(b"\x4a" + vl(len(array)) + array)
    if trace.description is not None:
        put_text(out, DESCRIPTION, trace.description)
    if trace.input_summary is not None:
        put_text(out, IN_SUMMARY, trace.input_summary)
    if trace.output_summary is not None:
        put_text(out, OUT_SUMMARY, trace.output_summary)


def _child(span: Span, tid_field: bytes, root_id: bytes) -> bytes:
    sid = span.id if type(span.id) is str else str(span.id)
    parent = span.parent_id
    if parent is None:
        parent_raw = root_id
    else:
        parent_raw = span_id(parent if type(parent) is str else str(parent))
    raw = sid.encode("utf-8", "replace")
    parts = [
        tid_field + b"\x12\x08" + span_id(sid) + b"\x22\x08" + parent_raw,
        SPAN_ID.heads.get(len(raw)) or SPAN_ID.head(len(raw)),
        raw,
    ]
    _record(parts, span)
    return _field(parts)


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
    # The root span, then one field per span.
    head = TRACE_ID.heads.get(len(raw)) or TRACE_ID.head(len(raw))
    parts = [tid_field + b"\x12\x08" + root_id, head, raw]
    _record(parts, trace)
    if (
        _get_tags(trace)
        or trace.description is not None
        or trace.input_summary is not None
        or trace.output_summary is not None
    ):
        _root_extras(parts, trace)
    root = _field(parts)
    spans = _get_spans(trace)
    if not spans:
        return root
    return b"".join([root, *(_child(span, tid_field, root_id) for span in spans)])


def request_envelope(resource: bytes, scope: bytes, spans_size: int) -> bytes:
    """The bytes of an ``ExportTraceServiceRequest`` before its spans.

    ``resource`` and ``scope`` are the encoded ``ResourceSpans.resource`` and
    ``ScopeSpans.scope`` fields; ``spans_size`` is the length of all the spans' fields.
    """
    scope_spans = len(scope) + spans_size
    resource_spans = len(resource) + 1 + len(vl(scope_spans)) + scope_spans
    return b"\x0a" + vl(resource_spans) + resource + b"\x12" + vl(scope_spans) + scope
