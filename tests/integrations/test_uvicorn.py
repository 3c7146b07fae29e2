"""A FastAPI service in a real uvicorn process, traced by TracingMiddleware and drained by
the lifespan when uvicorn gets SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from typing import Any

import httpx

from .conftest import Recorder, read_until, spawn

REQUESTS = 300


def _request(n: int) -> tuple[str, str, int]:
    """(path, expected trace name, expected status) for request ``n``."""
    kind = n % 6
    if kind == 0:
        return f"/fail/crash?rid=r{n}", "GET /fail/{kind}", 500
    if kind == 1:
        return f"/fail/http?rid=r{n}", "GET /fail/{kind}", 503
    if kind == 2:
        return f"/v1/users/u{n}?rid=r{n}", "GET /v1/users/{user_id}", 200
    if kind == 3:
        return f"/nowhere/{n}?rid=r{n}", f"GET /nowhere/{n}", 404
    return f"/items/{n}?rid=r{n}", "GET /items/{item_id}", 200


def _check_spans(trace: dict[str, Any], rid: str) -> None:
    spans = trace["spans"]
    if trace["name"] == "GET /v1/users/{user_id}":
        assert [s["name"] for s in spans] == ["lookup"]
        assert spans[0]["parentId"] is None
        assert spans[0]["input"]["rid"] == rid
        return
    if "rid" not in trace["metadata"]:  # 404: no handler ran
        assert spans == []
        return
    (assemble,) = [s for s in spans if s["name"] == "assemble"]
    fetches = [s for s in spans if s["name"] == "fetch"]
    assert assemble["parentId"] is None
    assert len(fetches) == 3
    assert {s["parentId"] for s in fetches} == {assemble["id"]}
    assert {s["input"]["rid"] for s in [assemble, *fetches]} == {rid}
    assert sorted(s["output"] for s in fetches) == [f"{rid}:{p}" for p in range(3)]


async def test_every_request_traced_once_and_delivered_on_sigterm(recorder: Recorder) -> None:
    """300 concurrent requests, some failing, then SIGTERM: one correct trace per request."""
    proc = await spawn(
        "-m",
        "uvicorn",
        "tests.integrations.service_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-access-log",
        # uvicorn closes a connection idle for 5 s by default; on a loaded machine the
        # client may pick such a connection from its pool just then (a ReadError).
        "--timeout-keep-alive",
        "300",
        TRACING_ENDPOINT=recorder.url,
    )
    assert proc.stderr is not None
    log: list[str] = []
    try:
        line = await asyncio.wait_for(read_until(proc.stderr, "Uvicorn running on", log), 30)
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        base = f"http://127.0.0.1:{match.group(1)}"
        drain = asyncio.create_task(proc.stderr.read())  # the pipe must never fill up
        # No keep-alive: a pooled connection that the server is closing (after a streamed
        # response that failed, or its idle timeout) surfaced as a ReadError under load;
        # each request on a connection of its own still reaches every route once.
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
        # A TaskGroup, not gather(): if one request fails, the others are cancelled and
        # awaited here, so nothing of this test is left for the garbage collector to
        # report during the next one.
        async with (
            httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client,
            asyncio.TaskGroup() as group,
        ):
            sent = [group.create_task(client.get(_request(n)[0])) for n in range(REQUESTS)]
        codes = [task.result().status_code for task in sent]
        assert codes == [_request(n)[2] for n in range(REQUESTS)]
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(drain, 30)).decode()
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert await proc.wait() in (0, -signal.SIGTERM), "".join(log) + rest
        assert "Application shutdown complete." in rest, rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    names = Counter(t["name"] for t in recorder.received)
    assert names["app-shutdown"] == 1, "a trace made in the inner lifespan's shutdown arrives"
    traces = [t for t in recorder.received if t["name"] != "app-shutdown"]
    assert len(traces) == REQUESTS, "exactly one trace per request, none sent twice"
    by_path = {}
    for trace in traces:
        rid = trace["metadata"].get("rid")
        key = rid or trace["name"]
        assert key not in by_path
        by_path[key] = trace
    for n in range(REQUESTS):
        _, name, status = _request(n)
        trace = by_path.get(f"r{n}") or by_path[f"GET /nowhere/{n}"]
        meta = trace["metadata"]
        assert trace["name"] == name
        assert meta["http.request.method"] == "GET"
        assert meta["http.response.status_code"] == status
        assert trace["status"] == ("error" if status >= 500 else "ok")
        if status == 404:
            assert "http.route" not in meta
        else:
            assert meta["http.route"] == name.removeprefix("GET ")
        if status == 500:
            assert trace["error"] == f"boom r{n}"
        _check_spans(trace, f"r{n}")
