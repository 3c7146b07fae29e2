"""The README as a new user follows it: its snippets run, its commands install what they
need, and what it says about the collector's cookie is what the collector does."""

from __future__ import annotations

import importlib.metadata
import re
import textwrap
from pathlib import Path
from typing import Any

import aiohttp

import tracing
from tests.collector.conftest import StartCollector
from tracing import AsyncTracing, Trace

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def block_after(marker: str) -> str:
    """The first python block after ``marker`` in the README."""
    return str(_BLOCK.findall(README[README.index(marker) :])[0])


async def test_the_summaries_snippet_runs_and_the_viewer_shows_it(
    start_collector: StartCollector,
) -> None:
    """The README never said how to set description, input_summary, output_summary; the
    snippet that does now runs as written, and the trace page shows all three."""
    collector = await start_collector()
    snippet = block_after("The viewer shows three short texts")
    source = "async def snippet(tracer, document, ticket_id, summarize, Trace):\n"
    source += textwrap.indent(snippet, "    ")
    namespace: dict[str, Any] = {}
    exec(compile(source, "README.md", "exec"), namespace)

    async def summarize(text: str) -> str:
        return "printer on fire, please help"

    async with AsyncTracing(endpoint=collector.url, flush_interval=0) as tracer:
        await namespace["snippet"](tracer, "x" * 1200, 42, summarize, Trace)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{collector.url}/api/traces?name=summarize") as response:
            (item,) = (await response.json())["traces"]
        assert item["description"] == "Summarise a support ticket for the on-call engineer"
        assert item["inputSummary"] == "ticket #42, 1,200 characters"
        assert item["outputSummary"] == "5 words"
        async with http.get(f"{collector.url}/traces/{item['id']}") as response:
            page = await response.text()
        for text in ("Summarise a support ticket", "ticket #42, 1,200 characters", "5 words"):
            assert text in page
        async with http.get(f"{collector.url}/api/traces?name=nightly-job") as response:
            (job,) = (await response.json())["traces"]
        assert (job["description"], job["outputSummary"]) == ("re-index", "1,204 docs")


def test_every_uvicorn_command_comes_with_its_install() -> None:
    """``pip install 'tracing[fastapi]'`` brings no server, yet the README said to run
    ``uvicorn examples.fastapi_app:app``: each place that runs uvicorn installs it."""
    for path in (ROOT / "README.md", ROOT / "examples" / "fastapi_app.py"):
        text = path.read_text()
        assert "uvicorn examples.fastapi_app:app" in text, path
        installs = re.findall(r"pip install [^\n`]*", text)
        assert any("tracing[fastapi]" in c and "uvicorn" in c for c in installs), path


def test_the_version_is_documented_and_true() -> None:
    assert "`tracing.__version__`" in README
    assert tracing.__version__ == importlib.metadata.version("aiotracing")  # the distribution name


async def test_what_the_readme_says_the_cookie_opens(start_collector: StartCollector) -> None:
    """README: the cookie opens the pages and the read API, never ingest."""
    assert "the pages (`/`, `/traces/{id}`) and the read API" in README
    collector = await start_collector("--key", "k-1")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        form = {"key": "k-1", "next": "/"}
        async with browser.post(f"{collector.url}/signin", data=form) as response:
            assert response.status == 200
        for path in ("/", "/traces/nope", "/api/traces", "/api/traces/nope"):
            async with browser.get(collector.url + path, allow_redirects=False) as response:
                # 404 for the unknown id: let in, not sent to sign in (303) or refused (401)
                assert response.status in (200, 404), path
        async with browser.post(
            f"{collector.url}/api/traces/batch", data=b'{"traces": []}'
        ) as response:
            assert response.status == 401
