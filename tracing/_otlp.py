"""OTLP/HTTP protobuf (README "Sending to OpenTelemetry backends (OTLP)") as a ``WireProtocol``.

``POST {endpoint}/v1/traces`` with an ``ExportTraceServiceRequest``: one resource
(``service.name`` and ``telemetry.sdk.*``), one scope (``tracing`` and the version), each
trace as a root span and its spans (``_otlp_encode``). Retried, as the OTLP specification
says: 429, 502, 503 and 504 (transport errors and timeouts are retried by the exporter in
every protocol). A 200 with ``partial_success`` counts every trace as sent and logs the
server's message: OTLP reports rejected spans by count, not which ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from ._log import ids, logger
from ._models import Trace
from ._otlp_encode import encode_spans, request_envelope
from ._outcome import Outcome
from ._pb import LEN, VARINT, iter_fields, key_value, length_delimited
from ._protocol import Answer, snippet
from ._version import __version__
from ._wire import WireError

__all__ = ["OTLP_PATH", "OTLP_RETRYABLE", "OtlpProtocol", "read_partial_success"]

OTLP_PATH = "/v1/traces"
OTLP_RETRYABLE = frozenset({429, 502, 503, 504})
_MESSAGE = 300  # characters of a server's message in a log line at most


class OtlpProtocol:
    """``application/x-protobuf`` batches; the answer's ``partial_success`` is read."""

    path = OTLP_PATH
    content_type = "application/x-protobuf"
    retryable = OTLP_RETRYABLE

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name
        attributes = (
            ("service.name", service_name),
            ("telemetry.sdk.name", "tracing"),
            ("telemetry.sdk.language", "python"),
            ("telemetry.sdk.version", __version__),
        )
        resource = b"".join(length_delimited(1, key_value(k, v)) for k, v in attributes)
        scope = length_delimited(1, b"tracing") + length_delimited(2, __version__.encode())
        self._resource = length_delimited(1, resource)  # ResourceSpans.resource
        self._scope = length_delimited(1, scope)  # ScopeSpans.scope

    def __repr__(self) -> str:
        return f"<OtlpProtocol service_name={self.service_name!r}>"

    def encode_batch(self, traces: Sequence[Trace]) -> tuple[bytes, list[bytes] | None] | None:
        try:
            parts = [encode_spans(trace) for trace in traces]
        except Exception:  # find which trace, and let the others go: trace by trace
            return None
        return self.join(parts), parts

    def encode_trace(self, trace: Trace) -> bytes:
        try:
            return encode_spans(trace)
        except Exception as exc:  # user values of any kind: that trace fails alone
            raise WireError(f"trace {trace.id} cannot be encoded as OTLP: {exc!r}") from exc

    def join(self, parts: Sequence[bytes]) -> bytes:
        head = request_envelope(self._resource, self._scope, sum(map(len, parts)))
        return b"".join([head, *parts])

    def parts_of(self, traces: Sequence[Trace], body: bytes) -> list[bytes]:
        return [self.encode_trace(trace) for trace in traces]

    def accepted(self, traces: list[Trace], answer: Answer) -> Outcome:
        partial = read_partial_success(answer.body, answer.content_type)
        if partial is None:
            return Outcome.answered(traces, answer.status, {})
        rejected, message = partial
        message = message[:_MESSAGE]
        if rejected:
            text = f"accepted; the server rejected {rejected} span(s) of the batch: {message}"
            logger.warning(
                "tracing: the OTLP endpoint rejected %d span(s) of a batch of %d trace(s) "
                "(counted as sent): %s; traces: %s",
                rejected,
                len(traces),
                message or "(no message)",
                ids(traces),
            )
        else:
            text = f"accepted with a warning: {message}"
            logger.warning(
                "tracing: the OTLP endpoint accepted a batch with a warning: %s", message
            )
        return Outcome.answered(traces, answer.status, {t.id: (True, text) for t in traces})

    def describe(self, answer: Answer) -> str:
        if answer.content_type == "application/x-protobuf":
            message = _status_message(answer.body)
            if message:
                return snippet(message.encode())
        return snippet(answer.body)


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def read_partial_success(body: bytes, content_type: str = "") -> tuple[int, str] | None:
    """``(rejected_spans, error_message)`` of an ``ExportTraceServiceResponse``, or None
    for a full success (no ``partial_success``, or an empty one) or an unreadable body.

    Protobuf unless the answer says JSON (Langfuse answers JSON to protobuf requests).
    """
    if not body:
        return None
    if content_type == "application/json" or body[:1] == b"{":
        return _json_partial_success(body)
    rejected, message = 0, ""
    try:
        for field, wire_type, value in iter_fields(body):
            if field != 1 or wire_type != LEN:
                continue
            assert isinstance(value, bytes)
            for inner, inner_type, item in iter_fields(value):
                if inner == 1 and inner_type == VARINT:
                    assert isinstance(item, int)
                    rejected = _int64(item)
                elif inner == 2 and inner_type == LEN:
                    assert isinstance(item, bytes)
                    message = item.decode("utf-8", "replace")
    except ValueError:
        return None
    return (rejected, message) if rejected or message else None


def _json_partial_success(body: bytes) -> tuple[int, str] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    partial = (
        data.get("partialSuccess", data.get("partial_success")) if isinstance(data, dict) else None
    )
    if not isinstance(partial, dict):
        return None
    raw = partial.get("rejectedSpans", partial.get("rejected_spans", 0))
    try:
        rejected = int(raw or 0)  # int64 is a string in OTLP/JSON; a number is accepted
    except (TypeError, ValueError):
        rejected = 0
    message = partial.get("errorMessage", partial.get("error_message")) or ""
    message = message if isinstance(message, str) else str(message)
    return (rejected, message) if rejected or message else None


def _status_message(body: bytes) -> str:
    """The ``message`` of a ``google.rpc.Status`` body (OTLP's failure answer), or ''."""
    try:
        for field, wire_type, value in iter_fields(body):
            if field == 2 and wire_type == LEN and isinstance(value, bytes):
                return value.decode("utf-8", "replace")
    except ValueError:
        pass
    return ""
