"""OTLP/HTTP protobuf: ``ExportTraceServiceRequest`` bytes to ``OtlpSpan`` records.

Field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto`` and
``common/v1/common.proto``; unknown fields are skipped, as protobuf requires. A body
that is not well-formed protobuf is a ``DecodeError`` (the route's 400); a span whose
attribute values nest too deep is a ``BadSpan`` (rejected alone).
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
from ._protobuf import I32, I64, LEN, VARINT, ProtobufError, as_signed, fields, text

__all__ = ["decode_request"]

_DOUBLE = struct.Struct("<d")
Decoded = OtlpSpan | BadSpan


def decode_request(body: bytes) -> list[Decoded]:
    """Every span of the request, in order, each read or marked bad.

    Raises:
        DecodeError: the body is not a well-formed ``ExportTraceServiceRequest``.
    """
    try:
        out: list[Decoded] = []
        for number, wire, value in fields(memoryview(body)):
            if number == 1:
                _resource_spans(_message(value, wire, number), out)
        return out
    except ProtobufError as exc:
        message = f"body is not a valid OTLP protobuf ExportTraceServiceRequest: {exc}"
        raise DecodeError(message) from None


def _message(value: int | memoryview, wire: int, number: int) -> memoryview:
    if wire != LEN or not isinstance(value, memoryview):
        raise ProtobufError(f"field {number} must be length-delimited")
    return value


def _number(value: int | memoryview, wire: int, expected: int, number: int) -> int:
    if wire != expected or isinstance(value, memoryview):
        raise ProtobufError(f"field {number} has wire type {wire}, expected {expected}")
    return value


def _resource_spans(buf: memoryview, out: list[Decoded]) -> None:
    # Fields may come in any order: collect the scopes, then read them with the resource.
    resource: Mapping[str, Any] = {}
    scopes: list[memoryview] = []
    resource_problem: str | None = None
    for number, wire, value in fields(buf):
        if number == 1:
            try:
                resource = _resource(_message(value, wire, number))
            except TooDeep as exc:
                resource_problem = f"resource attributes: {exc}"
        elif number == 2:
            scopes.append(_message(value, wire, number))
    for scope in scopes:
        _scope_spans(scope, resource, resource_problem, out)


def _resource(buf: memoryview) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for number, wire, value in fields(buf):
        if number == 1:
            _key_value(_message(value, wire, number), attributes, 1)
    return attributes


def _scope_spans(
    buf: memoryview, resource: Mapping[str, Any], problem: str | None, out: list[Decoded]
) -> None:
    name = version = ""
    spans: list[memoryview] = []
    for number, wire, value in fields(buf):
        if number == 1:
            name, version = _scope(_message(value, wire, number))
        elif number == 2:
            spans.append(_message(value, wire, number))
    for span in spans:
        decoded = _span(span, resource, name, version)  # read even if bad: well-formed?
        out.append(decoded if problem is None else BadSpan(problem))


def _scope(buf: memoryview) -> tuple[str, str]:
    name = version = ""
    for number, _wire, value in fields(buf):
        if number == 1:
            name = text(value, number)
        elif number == 2:
            version = text(value, number)
    return name, version


def _span(buf: memoryview, resource: Mapping[str, Any], scope: str, version: str) -> Decoded:
    found: dict[str, Any] = {
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
    attributes: dict[str, Any] = {}
    events: list[OtlpEvent] = []
    links: list[OtlpLink] = []
    problem: str | None = None
    for number, wire, value in fields(buf):
        try:
            _span_field(number, wire, value, found, attributes, events, links)
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


_SPAN_BYTES = {1: "trace_id", 2: "span_id", 4: "parent_span_id"}
_SPAN_TIMES = {7: "start_ns", 8: "end_ns"}


def _span_field(
    number: int,
    wire: int,
    value: int | memoryview,
    found: dict[str, Any],
    attributes: dict[str, Any],
    events: list[OtlpEvent],
    links: list[OtlpLink],
) -> None:
    if number in _SPAN_BYTES:
        found[_SPAN_BYTES[number]] = bytes(_message(value, wire, number))
    elif number == 5:
        found["name"] = text(value, number)
    elif number == 6:
        found["kind"] = as_signed(_number(value, wire, VARINT, number), 64)
    elif number in _SPAN_TIMES:
        found[_SPAN_TIMES[number]] = _number(value, wire, I64, number)
    elif number == 9:
        _key_value(_message(value, wire, number), attributes, 1)
    elif number == 11:
        events.append(_event(_message(value, wire, number)))
    elif number == 13:
        links.append(_link(_message(value, wire, number)))
    elif number == 15:
        found["status_code"], found["status_message"] = _status(_message(value, wire, number))
    elif number == 16:
        _number(value, wire, I32, number)  # flags: checked, not kept


def _event(buf: memoryview) -> OtlpEvent:
    name, time_ns, attributes = "", 0, dict[str, Any]()
    for number, wire, value in fields(buf):
        if number == 1:
            time_ns = _number(value, wire, I64, number)
        elif number == 2:
            name = text(value, number)
        elif number == 3:
            _key_value(_message(value, wire, number), attributes, 1)
    return OtlpEvent(name=name, time_ns=time_ns, attributes=attributes)


def _link(buf: memoryview) -> OtlpLink:
    trace_id, span_id, attributes = b"", b"", dict[str, Any]()
    for number, wire, value in fields(buf):
        if number == 1:
            trace_id = bytes(_message(value, wire, number))
        elif number == 2:
            span_id = bytes(_message(value, wire, number))
        elif number == 4:
            _key_value(_message(value, wire, number), attributes, 1)
    return OtlpLink(trace_id=trace_id, span_id=span_id, attributes=attributes)


def _status(buf: memoryview) -> tuple[int, str]:
    code, message = 0, ""
    for number, wire, value in fields(buf):
        if number == 2:
            message = text(value, number)
        elif number == 3:
            code = as_signed(_number(value, wire, VARINT, number), 64)
    return code, message


def _key_value(buf: memoryview, into: dict[str, Any], depth: int) -> None:
    key, found = "", None
    for number, wire, value in fields(buf):
        if number == 1:
            key = text(value, number)
        elif number == 2:
            found = _any_value(_message(value, wire, number), depth)
    into[key] = found


def _any_value(buf: memoryview, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise TooDeep(f"an attribute value is nested more than {MAX_DEPTH} levels deep")
    found: Any = None
    for number, wire, value in fields(buf):
        if number == 1:
            found = text(value, number)
        elif number == 2:
            found = _number(value, wire, VARINT, number) != 0
        elif number == 3:
            found = as_signed(_number(value, wire, VARINT, number))
        elif number == 4:
            found = _DOUBLE.unpack(_number(value, wire, I64, number).to_bytes(8, "little"))[0]
        elif number == 5:
            found = [
                _any_value(_message(v, w, n), depth + 1)
                for n, w, v in fields(_message(value, wire, number))
                if n == 1
            ]
        elif number == 6:
            kvlist: dict[str, Any] = {}
            for n, w, v in fields(_message(value, wire, number)):
                if n == 1:
                    _key_value(_message(v, w, n), kvlist, depth + 1)
            found = kvlist
        elif number == 7:
            found = base64.b64encode(_message(value, wire, number)).decode("ascii")
    return found
