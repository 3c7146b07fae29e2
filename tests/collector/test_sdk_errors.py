"""What the SDK says when the collector refuses it: short, and about the cause."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from tests.collector.conftest import Collector, get_json
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


async def test_a_lone_surrogate_in_a_trace_is_delivered_as_a_question_mark(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Before: a lone surrogate made its trace fail as unencodable (counted failed). Now
    the collector stores it, with "?" in its place, and the batch around it too."""
    tracer = AsyncTracing(endpoint=collector.url, flush_interval=0)
    tracer.enqueue(Trace("ok", id="t-ok"))
    tracer.enqueue(Trace("bad \ud800", id="t-bad", input="x \udfff y"))
    stats = await tracer.shutdown()
    assert (stats.sent, stats.failed) == (2, 0)
    status, stored = await get_json(http, f"{collector.url}/api/traces/t-bad")
    assert status == 200
    assert (stored["name"], stored["input"]) == ("bad ?", "x ? y")
