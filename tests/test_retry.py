"""Retry policy as pure functions (``_retry``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tracing._exceptions import SendFailure
from tracing._retry import (
    RETRYABLE,
    is_retryable,
    jittered,
    outage_delay,
    parse_retry_after,
    wait_gen,
)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    """408, 429 and every 5xx are retried."""
    assert is_retryable(status)
    assert status in RETRYABLE


@pytest.mark.parametrize("status", [200, 201, 301, 400, 401, 403, 404, 409, 413, 422, 600])
def test_other_statuses_are_not_retried(status: int) -> None:
    """2xx, 3xx, 413 and every other 4xx are final."""
    assert not is_retryable(status)


NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        (format_datetime(NOW + timedelta(seconds=10), usegmt=True), 10.0),
        (format_datetime(NOW - timedelta(seconds=10), usegmt=True), 0.0),
        ("Sat, 21 Nov 2026 12:00:30 GMT", 30.0),
        ("Sat, 21 Nov 2026 12:00:30 -0000", 30.0),  # no zone given: read as UTC
        ("Sat, 21 Nov 2026 14:00:30 +0200", 30.0),
        ("-inf", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    """Seconds and HTTP dates parse relative to ``now``; junk gives None; past gives 0."""
    assert parse_retry_after(header, NOW) == seconds


def test_parse_retry_after_without_now_counts_from_the_clock() -> None:
    """With no ``now``, a date is counted from the current time."""
    ahead = format_datetime(datetime.now(UTC) + timedelta(seconds=100), usegmt=True)
    seconds = parse_retry_after(ahead)
    assert seconds is not None
    assert 90 < seconds <= 100


def test_jittered_is_within_half_and_full_delay() -> None:
    """Equal jitter: between half and all of the capped exponential delay, spread over
    the whole of that range."""
    rng = random.Random(14)
    for attempt in range(8):
        full = min(1.0, 0.1 * 2**attempt)
        random.seed(rng.random())
        delays = [jittered(attempt, 0.1, 1.0) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert min(delays) < full * 0.55
        assert max(delays) > full * 0.95


def test_wait_gen_grows_and_honours_retry_after_capped() -> None:
    """The generator doubles, caps, and uses a failure's Retry-After capped at the max."""
    gen = wait_gen(0.1, 0.8)
    assert gen.send(None) == 0.0
    delays = [gen.send(SendFailure("x")) for _ in range(5)]
    assert 0.05 <= delays[0] <= 0.1
    assert 0.1 <= delays[1] <= 0.2
    assert 0.2 <= delays[2] <= 0.4
    assert 0.4 <= delays[4] <= 0.8
    assert gen.send(SendFailure("x", status=429, retry_after=0.3)) == 0.3
    assert gen.send(SendFailure("x", status=429, retry_after=100)) == 0.8


def test_outage_delay_doubles_up_to_cap() -> None:
    """The flusher's rest after n failed rounds doubles from the base up to the cap."""
    assert outage_delay(1, 0.5, 30) == 0.5
    assert outage_delay(2, 0.5, 30) == 1.0
    assert outage_delay(4, 0.5, 30) == 4.0
    assert outage_delay(20, 0.5, 30) == 30
    assert outage_delay(1, 0.0, 1.0) == 0.05  # a zero base still never spins
    assert outage_delay(3, 0.0, 1.0) == 0.2
    assert outage_delay(3, 0.5, 1.5) == 1.5
