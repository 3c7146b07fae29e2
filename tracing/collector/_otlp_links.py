"""Parent links of OTLP spans that arrive in other requests than their trace's root.

Within one request ``_otlp_group`` resolves every link. Across requests the store keeps
the root's span id on the trace row (``root_span``): a span stored before its root came
names the root's hex span id as ``parentId`` until the root arrives, when the store
rewrites it to null in the same transaction (``unlinked``); a span arriving after its
root gets null before it is stored (``unlink_spans``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import orjson

from ._records import SpanRecord

__all__ = ["unlink_spans", "unlinked"]


def unlinked(body: bytes, root_span: str) -> bytes | None:
    """``body`` with ``parentId`` null when it names ``root_span``; None when it does not."""
    if root_span.encode() not in body:  # the common case, without parsing
        return None
    span = orjson.loads(body)
    if span.get("parentId") != root_span:
        return None
    span["parentId"] = None
    return orjson.dumps(span)


def unlink_spans(
    spans: Sequence[SpanRecord], root_spans: Mapping[str, str]
) -> list[SpanRecord]:
    """``spans`` with links to their trace's root (``root_spans``: trace id -> root span
    id, for the traces whose root is stored) made top-level."""
    if not root_spans:
        return list(spans)
    out: list[SpanRecord] = []
    for span in spans:
        root = root_spans.get(span.trace_id)
        body = unlinked(span.body, root) if root is not None else None
        out.append(span if body is None else attrs.evolve(span, body=body))
    return out
