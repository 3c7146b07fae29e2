"""The exporter's seam: a wire protocol encodes a batch and reads the server's answer.

The exporter (``_exporter``) owns everything protocol-neutral: the session, the limiter,
concurrency, retries with backoff, the ``Retry-After`` pause, 413 splits and the counters.
A ``WireProtocol`` says where a batch goes, how its bytes are made, which statuses are
worth a retry and what a received answer means. Two implement it: this SDK's JSON
(``_jsonproto``) and OTLP/HTTP protobuf (``_otlp``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import attrs
import orjson

from ._models import Trace
from ._outcome import Outcome

if TYPE_CHECKING:
    from ._config import Config

__all__ = ["Answer", "WireProtocol", "make_protocol", "snippet"]

_SNIPPET = 120
_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


@attrs.frozen
class Answer:
    """An HTTP answer the exporter will not retry: status, body, media type."""

    status: int
    body: bytes
    content_type: str = ""


class WireProtocol(Protocol):
    """What the exporter needs to know about one wire format."""

    #: Appended to the endpoint: the URL every batch is posted to.
    path: str
    content_type: str
    #: Statuses retried (with backoff, honouring Retry-After); others are final.
    retryable: frozenset[int]

    def encode_batch(self, traces: Sequence[Trace]) -> tuple[bytes, list[bytes] | None] | None:
        """The whole body in one go, with each trace's part when that costs nothing extra
        (else None: ``parts_of`` makes them if needed); or None to encode trace by trace
        (``encode_trace``), so that a trace that cannot be encoded fails alone."""

    def encode_trace(self, trace: Trace) -> bytes:
        """One trace's part of a body.

        Raises:
            WireError: this trace cannot be encoded (it fails alone).
        """

    def join(self, parts: Sequence[bytes]) -> bytes:
        """The body around parts made by ``encode_trace`` or ``parts_of``."""

    def parts_of(self, traces: Sequence[Trace], body: bytes) -> list[bytes]:
        """Cut an ``encode_batch`` body into each trace's part (for a 413 split or a
        requeue), in order."""

    def accepted(self, traces: list[Trace], answer: Answer) -> Outcome:
        """The outcome of a 2xx answer."""

    def describe(self, answer: Answer) -> str:
        """A short text for a refusal (non-2xx), to put after ``HTTP <status>``."""


def snippet(body: bytes) -> str:
    """A short account of an error body, after ': ' (or '' when there is none): a JSON
    ``message``, an HTML page's title (never its markup), or the start of plain text."""
    text = body[: _SNIPPET * 8].decode("utf-8", "replace").strip()
    if text.startswith("<"):
        found = _TITLE.search(text)
        text = html.unescape(found.group(1)) if found else ""
    elif text.startswith("{"):
        try:
            message = orjson.loads(body).get("message")
        except (orjson.JSONDecodeError, AttributeError):
            message = None
        if isinstance(message, str):
            text = message
    text = " ".join(text.split())
    if len(text) > _SNIPPET:
        text = text[: _SNIPPET - 3] + "..."
    return f": {text}" if text else ""


def make_protocol(config: Config) -> WireProtocol:
    """The protocol ``config.protocol`` names; OTLP is imported only when used."""
    if config.protocol == "otlp":
        from ._otlp import OtlpProtocol

        return OtlpProtocol(config.service_name)
    from ._jsonproto import JsonProtocol

    return JsonProtocol()
