"""What the SDK says when the collector refuses it: short, and about the cause."""

from __future__ import annotations

import logging

import pytest

from tests.collector.conftest import Collector
from tracing import AsyncTracing, Trace


async def test_a_wrong_path_prefix_is_reported_without_the_html_page(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    """A 404 from a wrong prefix used to log ~250 characters of the server's HTML page;
    now the page's title and a hint naming the URL that was posted to."""
    reported: list[Exception] = []
    tracer = AsyncTracing(
        endpoint=collector.url + "/wrong",
        flush_interval=0,
        on_error=lambda exc, _traces: reported.append(exc),
    )
    with caplog.at_level(logging.WARNING, logger="tracing"):
        tracer.enqueue(Trace("t", id="t-1"))
        stats = await tracer.shutdown()
    assert stats.failed == 1
    (line,) = [r.getMessage() for r in caplog.records if "failed to deliver" in r.getMessage()]
    assert "<" not in line, line
    assert "HTTP 404: 404 · tracing collector" in line
    assert f"POST {collector.url}/wrong/api/traces/batch: is the endpoint" in line
    assert len(line) < 300, line
    assert str(reported[0]) in line
