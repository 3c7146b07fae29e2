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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs
import orjson

from ._records import SpanRecord

__all__ = ["body_tokens", "relink", "unlinked"]


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
        out.append(attrs.evolve(span, trace_id=trace_id, body=body or span.body))
    return out


def body_tokens(body: bytes) -> int:
    """promptTokens + completionTokens of a stored span's llmUsage (0 without)."""
    usage = orjson.loads(body).get("llmUsage")
    if not isinstance(usage, dict):
        return 0
    return int(usage.get("promptTokens") or 0) + int(usage.get("completionTokens") or 0)
