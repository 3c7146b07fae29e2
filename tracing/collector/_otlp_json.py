"""OTLP/HTTP JSON: an ``ExportTraceServiceRequest`` in the OTLP JSON mapping to
``OtlpSpan`` records.

The mapping differs from proto3 JSON, so ``google.protobuf.json_format`` is never used:
trace and span ids are hex (any case), not base64; enums are integers (their names are
accepted too); 64-bit integers come as decimal strings or numbers; keys are lowerCamelCase
(the snake_case field names are accepted as well, as the OpenTelemetry Collector does);
unknown keys are ignored. A body that is not such an object is a ``DecodeError``; a span
with a field of the wrong type is a ``BadSpan``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from ._otlp_span import (
    MAX_DEPTH,
    BadSpan,
    DecodeError,
    OtlpEvent,
    OtlpLink,
    OtlpSpan,
    TooDeep,
)

__all__ = ["decode_json_request"]

Decoded = OtlpSpan | BadSpan
_HEX = re.compile(r"[0-9a-fA-F]*")
_INT = re.compile(r"-?[0-9]+")
_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class _Bad(ValueError):
    """One span's field has the wrong type; the message names it."""


@functools.cache
def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def _get(obj: Mapping[str, Any], key: str) -> Any:
    value = obj.get(key)
    return obj.get(_snake(key)) if value is None else value


def decode_json_request(body: bytes) -> list[Decoded]:
    """Every span of the request, in order, each read or marked bad.

    Raises:
        DecodeError: not JSON, not an object, or its lists are not lists of objects.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DecodeError('body must be a JSON object {"resourceSpans": [...]}')
    out: list[Decoded] = []
    for item in _objects(data, "resourceSpans"):
        problem: str | None = None
        try:
            resource = _attributes(_object(item, "resource"), 1)
        except (_Bad, TooDeep) as exc:
            resource, problem = {}, f"resource: {exc}"
        for scope_spans in _objects(item, "scopeSpans"):
            scope = _object(scope_spans, "scope")
            name, version = _get(scope, "name"), _get(scope, "version")
            spans = _get(scope_spans, "spans")
            if spans is None:
                continue
            if not isinstance(spans, list):
                raise DecodeError('"spans" must be a list')
            for raw in spans:
                if problem is not None:
                    out.append(BadSpan(problem))
                    continue
                try:
                    out.append(_span(raw, resource, name, version))
                except (_Bad, TooDeep) as exc:
                    out.append(BadSpan(str(exc)))
    return out


def _objects(obj: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = _get(obj, key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DecodeError(f'"{key}" must be a list of objects')
    return value


def _object(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _get(obj, key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecodeError(f'"{key}" must be an object')
    return value


def _span(raw: Any, resource: Mapping[str, Any], scope: Any, version: Any) -> OtlpSpan:
    if not isinstance(raw, dict):
        raise _Bad("a span must be a JSON object")
    status = _get(raw, "status") or {}
    if not isinstance(status, dict):
        raise _Bad("span status must be an object")
    return OtlpSpan(
        trace_id=_hex_id(raw, "traceId"),
        span_id=_hex_id(raw, "spanId"),
        parent_span_id=_hex_id(raw, "parentSpanId"),
        name=_text(raw, "name"),
        kind=_enum(raw, "kind", _KINDS),
        start_ns=_uint64(raw, "startTimeUnixNano"),
        end_ns=_uint64(raw, "endTimeUnixNano"),
        attributes=_attributes(raw, 1),
        events=tuple(_event(e) for e in _list(raw, "events")),
        links=tuple(_link(link) for link in _list(raw, "links")),
        status_code=_enum(status, "code", _CODES),
        status_message=_text(status, "message"),
        resource=resource,
        scope_name=scope if isinstance(scope, str) else "",
        scope_version=version if isinstance(version, str) else "",
    )


def _event(raw: Any) -> OtlpEvent:
    if not isinstance(raw, dict):
        raise _Bad("span events must be objects")
    return OtlpEvent(
        name=_text(raw, "name"),
        time_ns=_uint64(raw, "timeUnixNano"),
        attributes=_attributes(raw, 1),
    )


def _link(raw: Any) -> OtlpLink:
    if not isinstance(raw, dict):
        raise _Bad("span links must be objects")
    return OtlpLink(
        trace_id=_hex_id(raw, "traceId"),
        span_id=_hex_id(raw, "spanId"),
        attributes=_attributes(raw, 1),
    )


def _list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = _get(raw, key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"span {key} must be a list")
    return value


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = _get(raw, key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Bad(f"{key} must be a string")
    return value


def _hex_id(raw: Mapping[str, Any], key: str) -> bytes:
    value = _get(raw, key)
    if value is None:
        return b""
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) % 2:
        raise _Bad(f"{key} must be a hex string, got {value!r:.60}")
    return bytes.fromhex(value)


def _enum(raw: Mapping[str, Any], key: str, names: Mapping[str, int]) -> int:
    value = _get(raw, key)
    if value is None:
        return 0
    if isinstance(value, str) and value in names:
        return names[value]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{key} must be an integer enum value, got {value!r:.40}")
    return value


def _integer(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise _Bad(f"{key} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Bad(f"{key} must be an integer or a decimal string, got {value!r:.40}")


def _uint64(raw: Mapping[str, Any], key: str) -> int:
    value = _get(raw, key)
    if value is None:
        return 0
    number = _integer(value, key)
    if not 0 <= number < 2**64:
        raise _Bad(f"{key} is out of range for a 64-bit unsigned integer")
    return number


def _attributes(raw: Mapping[str, Any], depth: int, key: str = "attributes") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in _list(raw, key):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise _Bad('attributes must be objects {"key": ..., "value": ...}')
        out[item["key"]] = _any_value(item.get("value"), depth)
    return out


def _any_value(raw: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise TooDeep(f"an attribute value is nested more than {MAX_DEPTH} levels deep")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _Bad("an attribute value must be an AnyValue object")
    for key, check in _SCALARS:
        value = _get(raw, key)
        if value is not None:
            return check(value)
    array = _get(raw, "arrayValue")
    if array is not None:
        if not isinstance(array, dict):
            raise _Bad("arrayValue must be an object")
        return [_any_value(v, depth + 1) for v in _list(array, "values")]
    kvlist = _get(raw, "kvlistValue")
    if kvlist is not None:
        if not isinstance(kvlist, dict):
            raise _Bad("kvlistValue must be an object")
        return _attributes(kvlist, depth + 1, "values")
    return None


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad("stringValue must be a string")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad("boolValue must be true or false")
    return value


def _int64(value: Any) -> int:
    number = _integer(value, "intValue")
    if not -(2**63) <= number < 2**63:
        raise _Bad("intValue is out of range for a 64-bit integer")
    return number


def _double(value: Any) -> float:
    if isinstance(value, str) and value in _SPECIAL_DOUBLES:
        return _SPECIAL_DOUBLES[value]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Bad("doubleValue must be a number")
    try:
        return float(value)
    except ValueError:
        raise _Bad(f"doubleValue must be a number, got {value!r:.40}") from None


def _bytes(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad("bytesValue must be a base64 string")
    return value


_SCALARS = (
    ("stringValue", _string),
    ("boolValue", _bool),
    ("intValue", _int64),
    ("doubleValue", _double),
    ("bytesValue", _bytes),
)
