"""The trace viewer in a real headless Chromium: list, trace timeline, escaping, sign-in.

Screenshots of each page are saved under the test's ``tmp_path``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.collector.conftest import Collector, StartCollector, make_trace
from tracing import AsyncTracing

SCRIPT_NAME = "<script>alert(1)</script>"
FAST: dict[str, Any] = {"flush_interval": 0, "retry_backoff": 0.01, "timeout": 10.0}


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


async def open_page(browser: Any, dialogs: list[str]) -> Any:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)

    async def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return page


async def test_list_then_trace_timeline(
    collector: Collector, chromium: Any, tmp_path: Path
) -> None:
    """The list shows traces newest first with errors marked; clicking one opens its
    timeline, whose bars are placed and sized in proportion to the spans' times."""
    demo = timeline_trace()
    hostile = make_trace(
        SCRIPT_NAME,
        start=200,
        status="error",
        error='<img src=x onerror="alert(2)">',
        input="</pre><script>alert(3)</script>",
        spans=[("<b onmouseover=alert(4)>span</b>", 200, 200.5, None)],
    )
    others = [
        make_trace(f"job-{i}", start=i, status="error" if i % 7 == 0 else "ok") for i in range(60)
    ]
    await send(collector, [demo, hostile, *others])

    dialogs: list[str] = []
    page = await open_page(chromium, dialogs)
    await page.goto(f"{collector.url}/")
    rows = page.locator("#traces tbody tr")
    assert await rows.count() == 50
    assert await rows.nth(0).locator("td.name a").inner_text() == SCRIPT_NAME
    assert await rows.nth(1).locator("td.name a").inner_text() == "timeline-demo"
    assert await rows.nth(0).get_attribute("class") == "error"
    assert await page.locator("tr.error").count() >= 2
    assert await page.locator("script").count() == 0
    assert await page.get_by_role("link", name="Older »").count() == 1
    await page.screenshot(path=tmp_path / "list.png", full_page=True)

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
    assert (tmp_path / "list.png").stat().st_size > 0
    await page.close()


async def test_filter_and_paging(collector: Collector, chromium: Any, tmp_path: Path) -> None:
    """The name and status filters narrow the list; Older/Newer links page through it
    with cursors, keeping the filters."""
    await send(
        collector,
        [
            make_trace(f"page-{i % 2}", start=i, status="error" if i % 4 == 1 else "ok")
            for i in range(120)
        ],
    )
    page = await open_page(chromium, [])
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
    await page.close()


async def test_sign_in_in_the_browser(
    start_collector: StartCollector, chromium: Any, tmp_path: Path
) -> None:
    """With a key set, a person signs in through the form and gets an HttpOnly,
    SameSite=Strict session cookie that is not the key."""
    collector = await start_collector("--key", "browser-key")
    await send(collector, [timeline_trace()], key="browser-key")
    page = await open_page(chromium, [])
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
    await page.close()
