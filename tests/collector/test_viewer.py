"""The trace viewer in a real headless Chromium: list, trace timeline, escaping, sign-in.

One browser serves the module (each test gets a fresh context), so the tests run in the
module's event loop, and so do their collectors. Screenshots of each page are saved
under the test's ``tmp_path``, for a person to look at when a test fails.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests._helpers import FAST
from tests.collector.conftest import Collector, StartCollector, collectors, make_trace
from tracing import AsyncTracing

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCRIPT_NAME = "<script>alert(1)</script>"


@pytest_asyncio.fixture(loop_scope="module")
async def start_collector(tmp_path: Path) -> AsyncIterator[StartCollector]:
    async with collectors(str(tmp_path / "collector.db")) as start:
        yield start


@pytest_asyncio.fixture(loop_scope="module")
async def collector(start_collector: StartCollector) -> Collector:
    return await start_collector()


async def send(collector: Collector, traces: list[Any], key: str | None = None) -> None:
    tracer = AsyncTracing(endpoint=collector.url, publishable_key=key, **FAST)
    result = await tracer.send_batch(traces)
    await tracer.shutdown()
    assert result.successful == len(traces), result.errors


def timeline_trace() -> Any:
    """Spans of 1 s, 2 s and 4 s: bars whose widths must be 1 : 2 : 4."""
    return make_trace(
        "timeline-demo",
        start=100,
        spans=[
            ("plan", 100, 101, None),
            ("llm.call", 101, 103, "plan"),
            ("tool.search", 103, 107, None),
        ],
        input={"question": "why is the sky blue?"},
        output="Rayleigh scattering",
    )


def record_dialogs(page: Any) -> list[str]:
    """Dismiss every alert() the page raises and keep its message: one means a script ran."""
    dialogs: list[str] = []

    async def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def hostile_trace() -> Any:
    return make_trace(
        SCRIPT_NAME,
        start=200,
        status="error",
        error='<img src=x onerror="alert(2)">',
        input="</pre><script>alert(3)</script>",
        spans=[("<b onmouseover=alert(4)>span</b>", 200, 200.5, None)],
    )


async def test_list_shows_newest_first_with_errors_marked(
    collector: Collector, page: Any, tmp_path: Path
) -> None:
    """The list shows 50 traces newest first, error rows marked, names as text, paging."""
    others = [
        make_trace(f"job-{i}", start=i, status="error" if i % 7 == 0 else "ok") for i in range(60)
    ]
    await send(collector, [timeline_trace(), hostile_trace(), *others])
    dialogs = record_dialogs(page)
    await page.goto(f"{collector.url}/")
    rows = page.locator("#traces tbody tr")
    assert await rows.count() == 50
    assert await rows.nth(0).locator("td.name a").inner_text() == SCRIPT_NAME
    assert await rows.nth(1).locator("td.name a").inner_text() == "timeline-demo"
    assert await rows.nth(0).get_attribute("class") == "error"
    assert await rows.nth(1).get_attribute("class") != "error"
    assert await page.locator("tr.error").count() >= 2
    assert await page.locator("script").count() == 0
    assert await page.get_by_role("link", name="Older »").count() == 1
    await page.screenshot(path=tmp_path / "list.png", full_page=True)
    assert dialogs == []


async def test_timeline_bars_are_placed_and_sized_by_time(
    collector: Collector, page: Any, tmp_path: Path
) -> None:
    """Clicking a trace opens its timeline: bars placed and sized in proportion to the
    spans' times, children indented, input, output and usage shown."""
    demo = timeline_trace()
    await send(collector, [demo, make_trace("other", start=50)])
    await page.goto(f"{collector.url}/")
    await page.get_by_role("link", name="timeline-demo").click()
    await page.wait_for_url(f"**/traces/{demo.id}")
    boxes = {}
    for span in demo.spans:
        bar = page.locator(f'.tl-bar[data-span-id="{span.id}"]')
        assert await bar.count() == 1
        boxes[span.name] = await bar.bounding_box()
    track = await page.locator(".tl-track").first.bounding_box()
    plan, llm, tool = boxes["plan"], boxes["llm.call"], boxes["tool.search"]
    unit = track["width"] / 7  # the trace spans 7 s
    assert plan["width"] == pytest.approx(unit, rel=0.02)
    assert llm["width"] == pytest.approx(2 * unit, rel=0.02)
    assert tool["width"] == pytest.approx(4 * unit, rel=0.02)
    assert plan["x"] == pytest.approx(track["x"], abs=2)
    assert llm["x"] == pytest.approx(track["x"] + unit, abs=2)
    assert tool["x"] == pytest.approx(track["x"] + 3 * unit, abs=2)
    labels = page.locator(".tl-row .tl-label")
    indent = {
        name: await labels.filter(has_text=name).first.evaluate(
            "e => parseFloat(getComputedStyle(e).paddingLeft)"
        )
        for name in ("plan", "llm.call", "tool.search")
    }
    assert indent["llm.call"] > indent["plan"] == indent["tool.search"]
    text = await page.locator("main").inner_text()
    for shown in ("why is the sky blue?", "Rayleigh scattering", "gpt-4o", "15 tokens"):
        assert shown in text
    await page.screenshot(path=tmp_path / "trace.png", full_page=True)


async def test_hostile_names_and_payloads_are_shown_as_text(
    collector: Collector, page: Any, tmp_path: Path
) -> None:
    """Markup in a name, error, input or span name is shown as text and never runs."""
    hostile = hostile_trace()
    await send(collector, [hostile])
    dialogs = record_dialogs(page)
    await page.goto(f"{collector.url}/traces/{hostile.id}")
    assert await page.locator("h1").inner_text() == f"{SCRIPT_NAME} error"
    main = await page.locator("main").inner_text()
    assert '<img src=x onerror="alert(2)">' in main
    assert "</pre><script>alert(3)</script>" in main
    assert "<b onmouseover=alert(4)>span</b>" in main
    assert await page.locator("main script, main img, main b").count() == 0
    await page.locator(".tl-label a").first.hover()
    await page.screenshot(path=tmp_path / "hostile.png", full_page=True)
    assert dialogs == []


async def test_filter_and_paging(collector: Collector, page: Any, tmp_path: Path) -> None:
    """The name and status filters narrow the list; Older/Newer links page through it
    with cursors, keeping the filters."""
    await send(
        collector,
        [
            make_trace(f"page-{i % 2}", start=i, status="error" if i % 4 == 1 else "ok")
            for i in range(120)
        ],
    )
    await page.goto(f"{collector.url}/")
    await page.fill("#name", "page-1")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(re.compile(r"/\?name=page-1&status=$"))
    rows = page.locator("#traces tbody tr")
    assert await rows.count() == 50
    first_page = await rows.nth(0).locator("td.name a").get_attribute("href")
    await page.get_by_role("link", name="Older »").click()
    await page.wait_for_url(re.compile(r"cursor=.+&name=page-1"))
    assert await rows.count() == 10
    names = {await rows.nth(i).locator("td.name a").inner_text() for i in range(10)}
    assert names == {"page-1"}
    assert await page.get_by_role("link", name="Older »").count() == 0
    await page.get_by_role("link", name="« Newer").click()
    await page.wait_for_url(re.compile(r"before=.+&name=page-1"))
    assert await rows.count() == 50
    assert await rows.nth(0).locator("td.name a").get_attribute("href") == first_page
    assert await page.get_by_role("link", name="« Newer").count() == 0
    await page.select_option("#status", "error")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(re.compile(r"/\?name=page-1&status=error$"))
    assert await rows.count() == 30
    assert await page.locator("#traces tbody tr.error").count() == 30
    await page.screenshot(path=tmp_path / "filtered.png", full_page=True)


async def test_sign_in_in_the_browser(
    start_collector: StartCollector, page: Any, tmp_path: Path
) -> None:
    """With a key set, a person signs in through the form and gets an HttpOnly,
    SameSite=Strict session cookie that is not the key."""
    collector = await start_collector("--key", "browser-key")
    await send(collector, [timeline_trace()], key="browser-key")
    await page.goto(f"{collector.url}/")
    await page.wait_for_url(re.compile(r"/signin\?next="))
    await page.fill("#key", "wrong")
    await page.get_by_role("button", name="Sign in").click()
    assert await page.get_by_role("alert").inner_text() == "That key is not valid."
    await page.screenshot(path=tmp_path / "signin.png", full_page=True)
    await page.fill("#key", "browser-key")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{collector.url}/")
    assert await page.locator("#traces tbody tr").count() == 1
    (cookie,) = await page.context.cookies()
    assert cookie["name"] == "tracing_session"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert "browser-key" not in cookie["value"]
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/signin")
    assert await page.context.cookies() == []
