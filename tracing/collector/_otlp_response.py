"""What ``POST /v1/traces`` answers, in the encoding of the request (OTLP/HTTP): an
``ExportTraceServiceResponse`` on success, with ``partial_success`` when spans were
rejected, and a ``google.rpc.Status`` for a failure."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from ._protobuf import write_bytes, write_varint_field

__all__ = ["JSON", "PATH", "PROTOBUF", "encoding_of", "otlp_error", "otlp_success"]

PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = frozenset({PROTOBUF, "application/protobuf"})
# google.rpc.Code for the statuses this route answers with.
_RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 8, 415: 3, 503: 14}
_RPC_UNKNOWN = 2


def encoding_of(request: web.BaseRequest) -> str | None:
    """``PROTOBUF`` or ``JSON`` from the request's Content-Type; None for anything else."""
    content_type = request.content_type  # the media type, lowercased, parameters dropped
    if content_type in _PROTOBUF_TYPES:
        return PROTOBUF
    if content_type == JSON:
        return JSON
    return None


def otlp_success(encoding: str, rejected: int, message: str) -> web.Response:
    """200 with ``ExportTraceServiceResponse``; ``partial_success`` only when it says
    something (an empty one means full success)."""
    if encoding == PROTOBUF:
        partial = b""
        if rejected:
            partial += write_varint_field(1, rejected)
        if message:
            partial += write_bytes(2, message.encode())
        body = write_bytes(1, partial) if partial else b""
    else:
        answer: dict[str, object] = {}
        if rejected or message:
            # int64 as a decimal string, as the OTLP JSON mapping writes 64-bit integers.
            answer["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
        body = orjson.dumps(answer)
    return web.Response(body=body, status=200, content_type=encoding)


def otlp_error(
    request: web.BaseRequest,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A failure as ``google.rpc.Status`` in the request's encoding (JSON when it has
    none we know: a 415 cannot be answered in an encoding we do not speak)."""
    code = _RPC_CODES.get(status, _RPC_UNKNOWN)
    if encoding_of(request) == PROTOBUF:
        body = write_varint_field(1, code) + write_bytes(2, message.encode())
        content_type = PROTOBUF
    else:
        body = orjson.dumps({"code": code, "message": message})
        content_type = JSON
    response = web.Response(body=body, status=status, content_type=content_type)
    response.headers.update(headers or {})
    return response
