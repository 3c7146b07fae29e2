"""OTLP/HTTP protobuf: ``ExportTraceServiceRequest`` bytes to ``OtlpSpan`` records.

Field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto`` and
``common/v1/common.proto``; unknown fields are skipped, as protobuf requires. A body
that is not well-formed protobuf is a ``DecodeError`` (the route's 400); a span whose
attribute values nest too deep is a ``BadSpan`` (rejected alone). Every message is read
as a range of the one body buffer (``buf``, ``start``, ``end``).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Any

from ._otlp_span import (
    MAX_DEPTH,
    BadSpan,
    DecodeError,
    OtlpEvent,
    OtlpLink,
    OtlpSpan,
    TooDeep,
)
from ._protobuf import (
    I32,
    I64,
    LEN,
    VARINT,
    ProtobufError,
    as_signed,
    fields,
    text,
    varint_at,
)

__all__ = ["decode_request"]

_DOUBLE = struct.Struct("<d")
Decoded = OtlpSpan | BadSpan
Range = tuple[int, int]


def decode_request(body: bytes) -> list[Decoded]:
    """Every span of the request, in order, each read or marked bad.

    Raises:
        DecodeError: the body is not a well-formed ``ExportTraceServiceRequest``.
    """
    buf = bytes(body)
    try:
        out: list[Decoded] = []
        for number, wire, a, b in fields(buf, 0, len(buf)):
            if number == 1:
                _resource_spans(buf, *_len(wire, a, b, number), out)
        return out
    except ProtobufError as exc:
        message = f"body is not a valid OTLP protobuf ExportTraceServiceRequest: {exc}"
        raise DecodeError(message) from None


def _len(wire: int, a: int, b: int, number: int) -> Range:
    if wire != LEN:
        raise ProtobufError(f"field {number} must be length-delimited")
    return a, b


def _int(wire: int, a: int, expected: int, number: int) -> int:
    if wire != expected:
        raise ProtobufError(f"field {number} has wire type {wire}, expected {expected}")
    return a


def _resource_spans(buf: bytes, start: int, end: int, out: list[Decoded]) -> None:
    # Fields may come in any order: collect the scopes, then read them with the resource.
    resource: Mapping[str, Any] = {}
    scopes: list[Range] = []
    problem: str | None = None
    for number, wire, a, b in fields(buf, start, end):
        if number == 1:
            try:
                resource = _attributes_of(buf, *_len(wire, a, b, number), 1)
            except TooDeep as exc:
                problem = f"resource attributes: {exc}"
        elif number == 2:
            scopes.append(_len(wire, a, b, number))
    for scope in scopes:
        _scope_spans(buf, *scope, resource, problem, out)


def _attributes_of(buf: bytes, start: int, end: int, depth: int, number: int = 1) -> dict[str, Any]:
    """The ``KeyValue`` fields ``number`` of a message (a Resource, a KeyValueList)."""
    attributes: dict[str, Any] = {}
    for n, wire, a, b in fields(buf, start, end):
        if n == number:
            _key_value(buf, *_len(wire, a, b, n), attributes, depth)
    return attributes


def _scope_spans(
    buf: bytes,
    start: int,
    end: int,
    resource: Mapping[str, Any],
    problem: str | None,
    out: list[Decoded],
) -> None:
    name = version = ""
    spans: list[Range] = []
    for number, wire, a, b in fields(buf, start, end):
        if number == 1:
            name, version = _scope(buf, *_len(wire, a, b, number))
        elif number == 2:
            spans.append(_len(wire, a, b, number))
    for span in spans:
        decoded = _span(buf, *span, resource, name, version)  # read even if bad: well-formed?
        out.append(decoded if problem is None else BadSpan(problem))


def _scope(buf: bytes, start: int, end: int) -> tuple[str, str]:
    name = version = ""
    for number, wire, a, b in fields(buf, start, end):
        if number == 1:
            name = text(buf, *_len(wire, a, b, number), number)
        elif number == 2:
            version = text(buf, *_len(wire, a, b, number), number)
    return name, version


_SPAN_BYTES = {1: "trace_id", 2: "span_id", 4: "parent_span_id"}
_SPAN_TIMES = {7: "start_ns", 8: "end_ns"}


def _span(
    buf: bytes, start: int, end: int, resource: Mapping[str, Any], scope: str, version: str
) -> Decoded:
    found = dict(_SPAN_DEFAULTS)
    attributes: dict[str, Any] = {}
    events: list[OtlpEvent] = []
    links: list[OtlpLink] = []
    problem: str | None = None
    for number, wire, a, b in fields(buf, start, end):
        try:
            if number == 9:  # attributes: most of a span's fields, read here for speed
                simple = _simple_key_value(buf, a, b) if wire == LEN else None
                if simple is None:
                    _key_value(buf, *_len(wire, a, b, number), attributes, 1)
                else:
                    attributes[simple[0]] = simple[1]
            elif number == 11:
                events.append(_event(buf, *_len(wire, a, b, number)))
            elif number == 13:
                links.append(_link(buf, *_len(wire, a, b, number)))
            else:
                _span_field(buf, number, wire, a, b, found)
        except TooDeep as exc:
            problem = str(exc)  # keep reading: the rest must still be well-formed
    if problem is not None:
        return BadSpan(problem)
    return OtlpSpan(
        attributes=attributes,
        events=tuple(events),
        links=tuple(links),
        resource=resource,
        scope_name=scope,
        scope_version=version,
        **found,
    )


_SPAN_DEFAULTS: Mapping[str, Any] = {
    "trace_id": b"",
    "span_id": b"",
    "parent_span_id": b"",
    "name": "",
    "kind": 0,
    "start_ns": 0,
    "end_ns": 0,
    "status_code": 0,
    "status_message": "",
}


def _span_field(buf: bytes, number: int, wire: int, a: int, b: int, found: dict[str, Any]) -> None:
    """One of a span's own fields (ids, name, kind, times, status, flags) into ``found``."""
    if number in _SPAN_BYTES:
        found[_SPAN_BYTES[number]] = buf[slice(*_len(wire, a, b, number))]
    elif number == 5:
        found["name"] = text(buf, *_len(wire, a, b, number), number)
    elif number in _SPAN_TIMES:
        found[_SPAN_TIMES[number]] = _int(wire, a, I64, number)
    elif number == 6:
        found["kind"] = as_signed(_int(wire, a, VARINT, number))
    elif number == 15:
        found["status_code"], found["status_message"] = _status(buf, *_len(wire, a, b, 15))
    elif number == 16:
        _int(wire, a, I32, number)  # flags: checked, not kept


def _event(buf: bytes, start: int, end: int) -> OtlpEvent:
    name, time_ns, attributes = "", 0, dict[str, Any]()
    for number, wire, a, b in fields(buf, start, end):
        if number == 1:
            time_ns = _int(wire, a, I64, number)
        elif number == 2:
            name = text(buf, *_len(wire, a, b, number), number)
        elif number == 3:
            _key_value(buf, *_len(wire, a, b, number), attributes, 1)
    return OtlpEvent(name=name, time_ns=time_ns, attributes=attributes)


def _link(buf: bytes, start: int, end: int) -> OtlpLink:
    trace_id, span_id, attributes = b"", b"", dict[str, Any]()
    for number, wire, a, b in fields(buf, start, end):
        if number == 1:
            trace_id = buf[slice(*_len(wire, a, b, number))]
        elif number == 2:
            span_id = buf[slice(*_len(wire, a, b, number))]
        elif number == 4:
            _key_value(buf, *_len(wire, a, b, number), attributes, 1)
    return OtlpLink(trace_id=trace_id, span_id=span_id, attributes=attributes)


def _status(buf: bytes, start: int, end: int) -> tuple[int, str]:
    code, message = 0, ""
    for number, wire, a, b in fields(buf, start, end):
        if number == 2:
            message = text(buf, *_len(wire, a, b, number), number)
        elif number == 3:
            code = as_signed(_int(wire, a, VARINT, number))
    return code, message


def _key_value(buf: bytes, start: int, end: int, into: dict[str, Any], depth: int) -> None:
    found = _simple_key_value(buf, start, end)
    if found is not None:
        into[found[0]] = found[1]
        return
    key, value = "", None
    for number, wire, a, b in fields(buf, start, end):
        if number == 1:
            key = text(buf, *_len(wire, a, b, number), number)
        elif number == 2:
            value = _any_value(buf, *_len(wire, a, b, number), depth)
    into[key] = value


def _simple_key_value(buf: bytes, start: int, end: int) -> tuple[str, Any] | None:
    """The common attribute in one pass: a short key, then a short string, an int, a
    bool or a double, with nothing else; None for anything else (the general path)."""
    if end - start < 4 or buf[start] != 0x0A:
        return None
    key_end = start + 2 + buf[start + 1]
    if buf[start + 1] >= 0x80 or key_end + 2 > end or buf[key_end] != 0x12:
        return None
    size = buf[key_end + 1]
    value_start = key_end + 2
    if size >= 0x80 or value_start + size != end or size < 2:
        return None
    tag = buf[value_start]
    try:
        key = buf[start + 2 : key_end].decode("utf-8")
        if tag == 0x0A and buf[value_start + 1] == size - 2:  # string_value
            return key, buf[value_start + 2 : end].decode("utf-8")
    except UnicodeDecodeError:
        return None  # the general path raises the error with its field number
    if tag == 0x18 or tag == 0x10:  # int_value, bool_value
        if size == 2 and buf[value_start + 1] < 0x80:  # a one-byte varint
            value = buf[value_start + 1]
        else:
            value, stop = _varint_at(buf, value_start + 1, end)
            if stop != end:
                return None
        return key, as_signed(value) if tag == 0x18 else value != 0
    if tag == 0x21 and size == 9:  # double_value
        return key, _DOUBLE.unpack_from(buf, value_start + 1)[0]
    return None


def _varint_at(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    try:
        return varint_at(buf, pos, end)
    except ProtobufError:
        return 0, -1  # not simple: the general path reports it


def _any_value(buf: bytes, start: int, end: int, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise TooDeep(f"an attribute value is nested more than {MAX_DEPTH} levels deep")
    found: Any = None
    for number, wire, a, b in fields(buf, start, end):
        if number == 1:
            found = text(buf, *_len(wire, a, b, number), number)
        elif number == 3:
            found = as_signed(_int(wire, a, VARINT, number))
        elif number == 2:
            found = _int(wire, a, VARINT, number) != 0
        elif number == 4:
            found = _DOUBLE.unpack(_int(wire, a, I64, number).to_bytes(8, "little"))[0]
        elif number == 5:
            found = [
                _any_value(buf, *_len(w, x, y, n), depth + 1)
                for n, w, x, y in fields(buf, *_len(wire, a, b, number))
                if n == 1
            ]
        elif number == 6:
            found = _attributes_of(buf, *_len(wire, a, b, number), depth + 1)
        elif number == 7:
            found = base64.b64encode(buf[a:b] if wire == LEN else b"").decode("ascii")
            _len(wire, a, b, number)
    return found
