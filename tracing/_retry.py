"""Retry policy as data and pure functions; the ``backoff`` library does the looping."""

from __future__ import annotations

import random
from collections.abc import Generator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ._exceptions import SendFailure

__all__ = ["RETRYABLE", "is_retryable", "outage_delay", "parse_retry_after", "wait_gen"]

RETRYABLE = frozenset({408, 429, *range(500, 600)})


def is_retryable(status: int) -> bool:
    """Whether an HTTP status is worth another attempt of the same batch."""
    return status in RETRYABLE


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Returns None when the header is absent or unreadable; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds == float("inf"):  # NaN or infinite
        return None
    return max(0.0, seconds)


def jittered(attempt: int, base: float, cap: float) -> float:
    """Exponential delay for the ``attempt``-th retry (0-based), 'equal jitter', capped.

    Half the delay is fixed and half random, so retries spread out yet never fire at once.
    """
    delay = min(cap, base * 2.0**attempt)
    return delay / 2 + random.uniform(0, delay / 2)


def wait_gen(base: float, cap: float) -> Generator[float, SendFailure | None, None]:
    """A ``backoff`` wait generator that honours ``Retry-After``.

    ``backoff`` sends it each exception; a failure carrying ``retry_after`` waits that
    long (capped at ``cap``) instead of the jittered exponential delay.
    """
    attempt = 0
    failure = yield 0.0  # backoff primes the generator with send(None)
    while True:
        if failure is not None and failure.retry_after is not None:
            delay = min(cap, failure.retry_after)
        else:
            delay = jittered(attempt, base, cap)
        attempt += 1
        failure = yield delay


def outage_delay(consecutive_failures: int, base: float, cap: float) -> float:
    """How long the flusher rests after its ``n``-th failed round in a row (n >= 1)."""
    return min(cap, max(base, 0.05) * 2.0 ** (consecutive_failures - 1))
