"""A new user's first hour (issue 13), on the real collector: what the viewer shows."""

from __future__ import annotations

import re

import aiohttp
import orjson

from tests.collector.conftest import Collector, post_batch

_TICKS = re.compile(r'<div class="ticks">(.*?)</div>')
_LABEL = re.compile(r"<span[^>]*>([^<]*)</span>")


async def test_a_sub_millisecond_timeline_has_distinct_ticks(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """A 0.1 ms trace's axis read "0.0 ms, 0.0 ms, 0.0 ms, 0.1 ms"; durations "0.0 ms"."""
    trace = {
        "id": "quick",
        "name": "quick",
        "startTime": "2026-11-21T12:00:00.000000Z",
        "endTime": "2026-11-21T12:00:00.000100Z",
        "spans": [
            {
                "id": "s",
                "name": "step",
                "startTime": "2026-11-21T12:00:00.000010Z",
                "endTime": "2026-11-21T12:00:00.000030Z",
            }
        ],
    }
    status, _ = await post_batch(http, collector, orjson.dumps({"traces": [trace]}))
    assert status == 200
    async with http.get(f"{collector.url}/traces/quick") as response:
        page = await response.text()
    (ticks,) = _TICKS.findall(page)
    assert _LABEL.findall(ticks) == ["0", "25 µs", "50 µs", "75 µs", "100 µs"]
    assert "20 µs" in page  # the span's duration, not "0.0 ms"
    assert "0.0 ms" not in page
