"""This SDK's own JSON protocol as a ``WireProtocol`` (README "The collector and its
viewer": its routes and "What ingest accepts").

``POST {endpoint}/api/traces/batch``; per-trace results in the answer. The encoding is
``_wire``'s: a batch is one orjson call, and each trace's bytes are cut from it and cached
on the trace when the batch is split or requeued, so user values are serialised once.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from ._models import Trace, utcnow
from ._outcome import Outcome
from ._protocol import Answer, snippet
from ._retry import RETRYABLE
from ._wire import BATCH_PATH, cache_parts, encode_batch, encode_body, encode_trace, parse_results

__all__ = ["JsonProtocol"]

_WIRE = attrgetter("_wire")


class JsonProtocol:
    """``application/json`` batches with per-trace results."""

    path = BATCH_PATH
    content_type = "application/json"
    retryable = RETRYABLE

    def __repr__(self) -> str:
        return "<JsonProtocol>"

    def encode_batch(self, traces: Sequence[Trace]) -> tuple[bytes, list[bytes] | None] | None:
        cached = list(map(_WIRE, traces))
        if None not in cached:  # every trace's bytes made already (a spool): joined as they are
            return encode_body(cached, utcnow()), cached
        body = encode_batch(traces, utcnow())
        return None if body is None else (body, None)

    def encode_trace(self, trace: Trace) -> bytes:
        return encode_trace(trace)

    def join(self, parts: Sequence[bytes]) -> bytes:
        return encode_body(parts, utcnow())

    def parts_of(self, traces: Sequence[Trace], body: bytes) -> list[bytes]:
        return cache_parts(traces, body)

    def accepted(self, traces: list[Trace], answer: Answer) -> Outcome:
        return Outcome.answered(traces, answer.status, parse_results(answer.body) or {})

    def describe(self, answer: Answer) -> str:
        return snippet(answer.body)
