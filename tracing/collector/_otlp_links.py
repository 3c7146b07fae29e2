"""Parent links of OTLP spans that arrive in other requests than their trace's root.

Within one request ``_otlp_group`` resolves every link. Across requests the store keeps
the root's span id on the trace row (``root_span``): a span stored before its root came
names the root's hex span id as ``parentId`` until the root arrives, when the store
rewrites it to null in the same transaction (``unlinked``); a span arriving after its
root gets null before it is stored (``relink``).

Our SDK's traces with a non-hex id are stored under that id (the root's
``tracing.trace.id``) while their spans carry the hex OTLP trace id (its SHA-256): the
trace row keeps that hex id too (``otlp_trace``), the root's arrival moves spans stored
under it into the trace, and spans arriving later are stored in the trace (``relink``).

Other parents: a span is stored under its own id, which for this SDK's spans is not
the hex span id their children name (``tracing.span.id``; its SHA-256 or its first 16
hex digits is the OTLP id). So a span row keeps that hex id (``otlp_id``), and a span
whose parent was not in its request keeps the parent's hex id (``otlp_parent``) until
the parent is found: a span arriving after its parent gets the parent's id before it is
stored (``adopt``); a parent arriving after its children rewrites them in the same
transaction (``adoptions``). Other SDKs' spans are stored under their hex ids, so their
links are right as they come. Both stores run each write as one transaction, and the
PostgreSQL store serialises those of one OTLP trace id (an advisory lock), so neither
side can miss the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import attrs
import orjson

from ._records import SpanRecord, TraceRecord

K = TypeVar("K")
# (trace id, hex OTLP span id) -> the id that span is stored under
Parents = Mapping[tuple[str, str], str]

__all__ = [
    "adopt",
    "adoptions",
    "body_tokens",
    "lock_keys",
    "new_parents",
    "relink",
    "reparented",
    "unlinked",
    "waiting",
]


def unlinked(body: bytes, root_span: str) -> bytes | None:
    """``body`` with ``parentId`` null when it names ``root_span``; None when it does not."""
    if root_span.encode() not in body:  # the common case, without parsing
        return None
    span = orjson.loads(body)
    if span.get("parentId") != root_span:
        return None
    span["parentId"] = None
    return orjson.dumps(span)


def relink(
    spans: Sequence[SpanRecord], stored: Iterable[tuple[str, str | None, str]]
) -> list[SpanRecord]:
    """``spans`` moved into the trace their hex trace id stands for, and with links to
    their trace's root made top-level. ``stored``: ``(trace id, otlp_trace, root_span)``
    of the stored traces whose root came, among the spans' trace ids and aliases."""
    roots: dict[str, str] = {}
    alias: dict[str, str] = {}
    for trace_id, otlp_trace, root_span in stored:
        roots[trace_id] = root_span
        if otlp_trace is not None:
            alias[otlp_trace] = trace_id
    if not roots:
        return list(spans)
    out: list[SpanRecord] = []
    for span in spans:
        trace_id = alias.get(span.trace_id, span.trace_id)
        root = roots.get(trace_id)
        body = unlinked(span.body, root) if root is not None else None
        if body is None:
            out.append(attrs.evolve(span, trace_id=trace_id))
        else:
            out.append(attrs.evolve(span, trace_id=trace_id, body=body, otlp_parent=None))
    return out


def reparented(body: bytes, old: str, new: str) -> bytes | None:
    """``body`` with ``parentId`` ``new`` when it is ``old``; None when it is not."""
    span = orjson.loads(body)
    if span.get("parentId") != old:
        return None
    span["parentId"] = new
    return orjson.dumps(span)


def waiting(spans: Iterable[SpanRecord]) -> list[tuple[str, str]]:
    """(trace id, hex parent id) of the spans whose parent is still to be found."""
    return sorted({(s.trace_id, s.otlp_parent) for s in spans if s.otlp_parent is not None})


def adopt(spans: Sequence[SpanRecord], parents: Parents) -> list[SpanRecord]:
    """``spans`` linked to the stored ids of the parents among ``parents`` (what the
    store found for ``waiting(spans)``)."""
    if not parents:
        return list(spans)
    out: list[SpanRecord] = []
    for span in spans:
        found = None
        if span.otlp_parent is not None:
            found = parents.get((span.trace_id, span.otlp_parent))
        if found is not None:
            body = reparented(span.body, str(span.otlp_parent), found)
            span = attrs.evolve(span, body=body or span.body, otlp_parent=None)
        out.append(span)
    return out


def adoptions(rows: Iterable[tuple[K, str, str, bytes]], parents: Parents) -> list[tuple[K, bytes]]:
    """The stored spans ``(row key, trace id, otlp_parent, body)`` waiting for one of
    ``parents`` (new spans stored under another id than their hex one), with their new
    bodies: ``(row key, body)``."""
    changed: list[tuple[K, bytes]] = []
    for key, trace_id, parent, body in rows:
        found = parents.get((trace_id, parent))
        if found is not None:
            changed.append((key, reparented(body, parent, found) or body))
    return changed


def new_parents(spans: Iterable[SpanRecord]) -> dict[tuple[str, str], str]:
    """``Parents`` of spans stored now under another id than their hex span id."""
    return {(s.trace_id, s.otlp_id): s.id for s in spans if s.otlp_id is not None}


def lock_keys(roots: Iterable[TraceRecord], spans: Iterable[SpanRecord]) -> list[int]:
    """The PostgreSQL advisory lock keys of the OTLP traces a write touches, sorted (so
    that concurrent writes take them in one order): one per hex OTLP trace id, which a
    root names as ``otlp_trace`` (or as its id) and its spans carry as ``trace_id``."""
    keys: set[str] = set()
    for trace in roots:
        if trace.root_span is not None:
            keys.add(trace.otlp_trace or trace.id)
    keys.update(span.trace_id for span in spans)
    return sorted({_lock_key(key) for key in keys})


def _lock_key(trace_key: str) -> int:
    digest = hashlib.blake2b(b"otlp trace " + trace_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def body_tokens(body: bytes) -> int:
    """promptTokens + completionTokens of a stored span's llmUsage (0 without)."""
    usage = orjson.loads(body).get("llmUsage")
    if not isinstance(usage, dict):
        return 0
    return int(usage.get("promptTokens") or 0) + int(usage.get("completionTokens") or 0)
