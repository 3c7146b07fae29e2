"""What both OTLP decoders (protobuf and JSON) produce: one ``OtlpSpan`` per span of an
``ExportTraceServiceRequest``, with attribute values already plain Python (str, bool,
int, float, list, dict, None), or a ``BadSpan`` for a span that cannot be read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["MAX_DEPTH", "BadSpan", "DecodeError", "OtlpEvent", "OtlpLink", "OtlpSpan", "TooDeep"]

# The batch route's rule: no value nested more than 128 levels deep (README "What ingest accepts").
MAX_DEPTH = 128


class DecodeError(ValueError):
    """The body is not an ``ExportTraceServiceRequest`` at all: the route answers 400."""


class TooDeep(ValueError):
    """An attribute value nests deeper than ``MAX_DEPTH``: its span is rejected."""


@attrs.frozen
class OtlpEvent:
    name: str
    time_ns: int
    attributes: Mapping[str, Any]


@attrs.frozen
class OtlpLink:
    trace_id: bytes
    span_id: bytes
    attributes: Mapping[str, Any]


@attrs.frozen
class OtlpSpan:
    """One span as the wire had it; ids are raw bytes, checked later by the mapping."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any]
    events: tuple[OtlpEvent, ...]
    links: tuple[OtlpLink, ...]
    status_code: int
    status_message: str
    resource: Mapping[str, Any]  # the resource's attributes (shared by its spans)
    scope_name: str
    scope_version: str


@attrs.frozen
class BadSpan:
    """A span the decoder could count but not read (a wrong type, an unreadable id)."""

    message: str
