"""The wire format: models to JSON bytes (camelCase keys, RFC 3339 ``Z`` times), gzip, and
the parsing of the collector's per-trace results.

Each trace is encoded once, to bytes cached on the trace, so retries, 413 splits and
requeues reuse it; a batch body is those bytes joined.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson

from ._models import LlmUsage, Span, Trace, _get_spans, _get_tags

__all__ = [
    "BATCH_PATH",
    "DEFAULT_ENDPOINT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "WireError",
    "cache_parts",
    "encode_batch",
    "encode_body",
    "encode_trace",
    "format_time",
    "gzip_body",
    "parse_results",
    "parse_time",
    "trace_to_wire",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7070
DEFAULT_ENDPOINT = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
BATCH_PATH = "/api/traces/batch"
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_UTC_Z
# Tried first: OPT_NON_STR_KEYS makes orjson ~1/3 slower on every dict, and nearly every
# trace has only string keys; one that has another key fails fast and is encoded again
# with _OPTIONS (the same bytes for string keys). See _dumps.
_STR_KEYS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_UTC_Z
TimeFormat = Callable[[datetime], Any]
_NONE: tuple[()] = ()  # an empty JSON array that is neither allocated nor GC-tracked


class WireError(ValueError):
    """A trace could not be encoded as JSON (a circular reference, say)."""


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: ``2026-11-21T23:59:59.123456Z``."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 time (``Z`` or an offset) into an aware UTC datetime.

    Raises:
        ValueError: not an RFC 3339 date-time with a time zone.
    """
    if not isinstance(value, str) or len(value) < 20 or value[10] not in "Tt ":
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
    if parsed.tzinfo is None:
        raise ValueError(f"RFC 3339 time needs 'Z' or an offset: {value!r}")
    return parsed.astimezone(UTC)


def _usage(usage: LlmUsage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "model": usage.model,
        "provider": usage.provider,
        "promptTokens": usage.prompt_tokens,
        "completionTokens": usage.completion_tokens,
        "apiCallsCount": usage.api_calls_count,
    }


def _native_time(value: datetime) -> datetime | str:
    """A UTC datetime orjson writes itself (``OPT_UTC_Z``), 3x faster than ``format_time``.

    orjson leaves out a zero microsecond, so those (one in a million) go through
    ``format_time`` to keep the six digits.
    """
    if value.tzinfo is UTC and value.microsecond:
        return value
    return format_time(value)


def _span(span: Span, time: TimeFormat = format_time) -> dict[str, Any]:
    start, end, usage = span.start_time, span.end_time, span.llm_usage
    return {
        "id": span.id,
        "parentId": span.parent_id,
        "name": span.name,
        "startTime": time(start),
        "endTime": None if end is None else time(end),
        "duration": None if end is None else (end - start).total_seconds(),
        "status": span.status,
        "error": span.error,
        "input": span.input,
        "output": span.output,
        "metadata": span.metadata,
        "llmUsage": None if usage is None else _usage(usage),
    }


def trace_to_wire(trace: Trace, time: TimeFormat = format_time) -> dict[str, Any]:
    """The trace as the JSON object the collector receives.

    ``time`` formats the datetimes; ``encode_trace`` passes ``_native_time`` so orjson
    writes them in C.
    """
    start, end, usage = trace.start_time, trace.end_time, trace.llm_usage
    tags, spans = _get_tags(trace), _get_spans(trace)  # the raw slots: no list made
    return {
        "id": trace.id,
        "name": trace.name,
        "description": trace.description,
        "startTime": time(start),
        "endTime": None if end is None else time(end),
        "duration": None if end is None else (end - start).total_seconds(),
        "status": trace.status,
        "error": trace.error,
        "input": trace.input,
        "output": trace.output,
        "inputSummary": trace.input_summary,
        "outputSummary": trace.output_summary,
        "metadata": trace.metadata,
        "tags": _NONE if tags is None else tags,
        "llmUsage": None if usage is None else _usage(usage),
        "spans": [_span(span, time) for span in spans] if spans else _NONE,
    }


def _fallback(value: Any) -> Any:
    """Turn what orjson cannot encode into something it can, never failing."""
    if isinstance(value, datetime):  # the stdlib fallback below meets _native_time's
        return format_time(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if attrs.has(type(value)):
        return attrs.asdict(value)
    return str(value)


def _dumps(data: Any) -> bytes:
    """``orjson.dumps`` with ``_OPTIONS``; the string-keys-only attempt first (see above)."""
    try:
        return orjson.dumps(data, default=_fallback, option=_STR_KEYS_OPTIONS)
    except orjson.JSONEncodeError:
        return orjson.dumps(data, default=_fallback, option=_OPTIONS)


def encode_trace(trace: Trace) -> bytes:
    """The trace's JSON bytes, cached on the trace so it is encoded only once.

    Raises:
        WireError: the trace holds something no JSON encoder can write.
    """
    cached = trace._wire
    if cached is not None:
        return cached
    data = trace_to_wire(trace, _native_time)
    try:
        # A right-sized copy: orjson's own bytes keep its whole ~8 KB output buffer
        # allocated, and the cache holds them as long as the trace lives (measured: 8.2 KB
        # vs 1.4 KB of RSS per cached 1 KB trace, for ~0.2 us).
        encoded = bytes(memoryview(_dumps(data)))
    except (orjson.JSONEncodeError, TypeError):
        # orjson refuses integers over 64 bits and deep nesting; the stdlib does not.
        # NaN and infinity are not JSON (orjson writes null): refused, the trace fails
        # alone instead of making a body the collector refuses whole.
        try:
            text = json.dumps(data, default=_fallback, ensure_ascii=False, allow_nan=False)
            # A lone surrogate (which orjson and UTF-8 refuse, and no store can hold)
            # becomes "?", as in OTLP mode: the trace is still delivered.
            encoded = text.encode("utf-8", "replace")
        except (ValueError, TypeError, RecursionError) as exc:
            raise WireError(f"trace {trace.id} cannot be encoded as JSON: {exc}") from exc
    trace._wire = encoded
    return encoded


def encode_batch(traces: Sequence[Trace], sent_at: datetime) -> bytes | None:
    """The whole batch body in one orjson call, or None to take the per-trace path.

    None when a trace already has its bytes cached (requeued after ``encode_trace``) or
    orjson refuses something; ``encode_trace`` + ``encode_body`` then handle each trace
    alone, so one bad trace fails alone. One call for the batch instead of one per trace
    and their join: ~0.4 us less per trace (benchmarks/README.md).
    """
    for trace in traces:
        if trace._wire is not None:
            return None
    data = {
        "sentAt": format_time(sent_at),
        "traces": [trace_to_wire(trace, _native_time) for trace in traces],
    }
    try:
        return _dumps(data)
    except (orjson.JSONEncodeError, TypeError):
        return None


def cache_parts(traces: Sequence[Trace], body: bytes) -> list[bytes]:
    """Cut an ``encode_batch`` body into each trace's bytes and cache them on the traces.

    For a batch that is split (413) or requeued: the parts come from the JSON already
    written, so the user's values are not serialised a second time.
    """
    parts = [bytes(memoryview(orjson.dumps(item))) for item in orjson.loads(body)["traces"]]
    for trace, part in zip(traces, parts, strict=True):
        trace._wire = part
    return parts


def encode_body(parts: Sequence[bytes], sent_at: datetime) -> bytes:
    """The batch envelope around already-encoded traces."""
    head = b'{"sentAt":"' + format_time(sent_at).encode() + b'","traces":['
    if len(parts) < 2:
        return head + b"".join(parts) + b"]}"
    # One copy of the whole body: the envelope joined to the first and last parts.
    return b",".join([head + parts[0], *parts[1:-1], parts[-1] + b"]}"])


def gzip_body(body: bytes) -> bytes:
    # Level 5 keeps most of level 9's ratio on JSON at a fraction of its CPU.
    return gzip.compress(body, compresslevel=5, mtime=0)


def parse_results(body: bytes) -> dict[str, tuple[bool, str]] | None:
    """Per-trace results of a 2xx answer, by trace id; None when it lists none.

    A 2xx without a usable ``results`` list means every trace was accepted.
    """
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        return None
    out: dict[str, tuple[bool, str]] = {}
    for item in results:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            message = item.get("message")
            out[item["id"]] = (item.get("success") is not False, str(message or ""))
    return out
