"""Reading a request body without trusting its size: the byte limit holds before, while
and after decompression, so neither a large upload nor a gzip bomb reaches memory."""

from __future__ import annotations

import zlib

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["BodyError", "read_body"]

_CHUNK = 64 * 1024
_GZIP = 16 + zlib.MAX_WBITS  # zlib's window bits for the gzip container


class BodyError(Exception):
    """The body cannot be accepted; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request: web.Request, max_body: int) -> bytes:
    """The request body, decompressed, at most ``max_body`` bytes before and after.

    Raises:
        BodyError: 413 over the limit, 415 for an encoding other than gzip or identity,
            400 for a corrupt gzip stream.
    """
    length = request.content_length
    if length is not None and length > max_body:
        raise BodyError(413, f"body is {length} bytes; the limit is {max_body}")
    # Only HTTP's spaces and tabs around the value: "gzip\xa0" is not gzip.
    encoding = request.headers.get("Content-Encoding", "identity").strip(" \t")
    encoding = encoding.lower() if encoding.isascii() else encoding
    if encoding not in ("identity", "gzip", "x-gzip", ""):
        raise BodyError(415, f"Content-Encoding {encoding[:40]!r} is not supported; use gzip")
    inflater = _Inflater(max_body) if encoding in ("gzip", "x-gzip") else None
    received = 0
    parts: list[bytes] = []
    try:
        async for chunk in request.content.iter_chunked(_CHUNK):
            received += len(chunk)
            if received > max_body:
                raise BodyError(413, f"body is over the limit of {max_body} bytes")
            parts.append(chunk if inflater is None else inflater.feed(chunk))
    except (aiohttp.ClientError, HttpProcessingError, ConnectionError):
        # The client went away or broke the framing mid-body; nobody reads the answer.
        raise BodyError(400, "the body was cut short") from None
    if inflater is not None:
        inflater.finish()
    return b"".join(parts)


class _Inflater:
    """Incremental gunzip that stops at ``limit`` output bytes (and handles members)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._out = 0
        self._z = zlib.decompressobj(_GZIP)
        self._started = False

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            if self._z.eof:
                # A gzip file may hold several members back to back.
                data = self._z.unused_data + data
                self._z = zlib.decompressobj(_GZIP)
            self._started = True
            try:
                # Never ask for more than one byte past the limit: a bomb stays small.
                piece = self._z.decompress(data, self._limit - self._out + 1)
            except zlib.error:
                raise BodyError(400, "body is not a valid gzip stream") from None
            self._grow(len(piece))
            out.append(piece)
            data = self._z.unconsumed_tail
            if self._z.eof:
                data = self._z.unused_data + data
                if data:
                    self._z = zlib.decompressobj(_GZIP)
        return b"".join(out)

    def finish(self) -> None:
        if not self._started or not self._z.eof:
            raise BodyError(400, "body is not a complete gzip stream")

    def _grow(self, size: int) -> None:
        self._out += size
        if self._out > self._limit:
            raise BodyError(413, f"decompressed body is over the limit of {self._limit} bytes")
