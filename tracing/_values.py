"""The frozen values the SDK returns or records: ``LlmUsage``, ``ApiResponse``,
``BatchResult``, ``Stats``. Re-exported by ``_models`` (and ``tracing``).
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["ApiResponse", "BatchResult", "LlmUsage", "Stats"]


def _non_negative_int(_inst: Any, attr: attrs.Attribute[int], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attr.name} must be a non-negative integer, got {value!r}")


@attrs.frozen
class LlmUsage:
    """Token usage of one or more LLM calls."""

    model: str
    provider: str
    prompt_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    completion_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    api_calls_count: int = attrs.field(default=1, validator=_non_negative_int)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@attrs.frozen
class ApiResponse:
    """The outcome of one trace sent by ``send_batch()``.

    ``status`` is the HTTP status of the response that decided it, or None when no
    response came (connection error, timeout).
    """

    id: str
    success: bool
    status: int | None
    message: str


@attrs.frozen
class BatchResult:
    """What ``send_batch()`` achieved: ``results`` in input order, one per trace."""

    total: int
    successful: int
    failed: int
    results: list[ApiResponse]
    errors: list[str]


@attrs.frozen
class Stats:
    """Counters of an ``AsyncTracing``, in traces except ``retries`` and ``batches``.

    At every moment ``enqueued + replayed == sent + failed + dropped + queue_size +
    spooled + in_flight``. ``spooled`` counts traces held on disk only (waiting for room in
    memory, or for the next start); ``replayed`` traces read back from a spool that this
    tracer did not enqueue. Both stay 0 without ``spool_dir``.
    """

    enqueued: int = 0
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0
    batches: int = 0
    queue_size: int = 0
    in_flight: int = 0
    spooled: int = 0
    replayed: int = 0
