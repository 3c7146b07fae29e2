"""What happens to a trace on its way into the queue: sampling and masking."""

from __future__ import annotations

import hashlib
from typing import Any

from ._config import Mask
from ._log import logger
from ._models import Span, Trace, _get_spans

__all__ = ["apply_mask", "sampled_in"]


def sampled_in(trace_id: str, rate: float) -> bool:
    """Keep or drop by a fixed hash of the id: the same answer in every process."""
    digest = hashlib.blake2b(trace_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2**64


def apply_mask(trace: Trace, mask: Mask) -> None:
    """Run ``mask`` once over input, output and metadata values of the trace and its spans."""
    if trace._masked:
        return
    trace._masked = True
    records: list[Trace | Span] = [trace, *(_get_spans(trace) or ())]
    for record in records:
        if record.input is not None:
            record.input = _masked(mask, record.input, trace, record, "input")
        if record.output is not None:
            record.output = _masked(mask, record.output, trace, record, "output")
        if record.metadata:
            record.metadata = {
                key: _masked(mask, value, trace, record, "metadata", key)
                for key, value in record.metadata.items()
            }


def _masked(
    mask: Mask, value: Any, trace: Trace, record: Trace | Span, field: str, key: Any = None
) -> Any:
    try:
        return mask(value)
    except Exception as exc:
        # Where, said only on failure: no string is built per masked value.
        where = f"trace {trace.name!r} ({trace.id})"
        if record is not trace:
            where = f"span {record.name!r} ({record.id}) of {where}"
        field = field if key is None else f"metadata[{key!r}]"
        # The exception's type only: its message may quote the value being masked.
        logger.warning(
            "tracing mask raised %s on the %s of %s; the value is sent as null",
            type(exc).__name__,
            field,
            where,
        )
        return None
