"""``POST /api/traces/batch`` on the real collector process, fed by the SDK and by hand."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from tests._helpers import FAST
from tests.collector.conftest import (
    Collector,
    SharedCollector,
    StartCollector,
    get_json,
    make_trace,
    post_batch,
)
from tracing import AsyncTracing, LlmUsage, Trace


async def produce(tracer: AsyncTracing, count: int, prefix: str) -> list[str]:
    """``count`` traces the way an app makes them: nested spans, usage, some errors."""
    ids: list[str] = []

    async def one(i: int) -> None:
        try:
            async with tracer.trace(f"{prefix}.{i % 3}", input={"i": i}) as trace:
                ids.append(trace.id)
                with trace.span("plan") as plan:
                    with trace.span("llm") as llm:
                        llm.end(output="ok", llm_usage=LlmUsage("gpt-4o", "openai", 10, i))
                    plan.end(output={"steps": 1})
                if i % 10 == 0:
                    raise RuntimeError(f"tool failed on {i}")
        except RuntimeError:
            pass

    await asyncio.gather(*(one(i) for i in range(count)))
    return ids


async def all_ids(http: aiohttp.ClientSession, collector: Collector) -> list[str]:
    ids: list[str] = []
    offset = 0
    while True:
        status, page = await get_json(
            http, f"{collector.url}/api/traces?limit=1000&offset={offset}"
        )
        assert status == 200
        ids += [item["id"] for item in page["traces"]]
        offset += 1000
        if offset >= page["total"]:
            return ids


async def test_sdk_traces_arrive_and_every_route_answers(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Hundreds of SDK traces (gzip) are all stored and served back by every route."""
    async with AsyncTracing(endpoint=collector.url, compression="gzip", **FAST) as tracer:
        ids = await produce(tracer, 300, "svc")
    stats = tracer.stats()
    assert (stats.sent, stats.failed, stats.dropped) == (300, 0, 0)

    status, page = await get_json(http, f"{collector.url}/api/traces?limit=100&offset=50")
    assert status == 200
    assert (page["total"], page["limit"], page["offset"]) == (300, 100, 50)
    assert len(page["traces"]) == 100
    starts = [item["startTime"] for item in page["traces"]]
    assert starts == sorted(starts, reverse=True)
    assert sorted(await all_ids(http, collector)) == sorted(ids)

    status, named = await get_json(http, f"{collector.url}/api/traces?name=svc.1")
    assert status == 200
    assert named["total"] == 100
    assert {item["name"] for item in named["traces"]} == {"svc.1"}

    status, trace = await get_json(http, f"{collector.url}/api/traces/{ids[10]}")
    assert status == 200
    assert trace["id"] == ids[10]
    assert trace["status"] == "error"
    assert trace["error"] == "tool failed on 10"
    plan, llm = sorted(trace["spans"], key=lambda s: s["name"] != "plan")
    assert plan["parentId"] is None
    assert llm["parentId"] == plan["id"]
    assert llm["llmUsage"] == {
        "model": "gpt-4o",
        "provider": "openai",
        "promptTokens": 10,
        "completionTokens": 10,
        "apiCallsCount": 1,
    }
    summary = next(i for i in (await all_page(http, collector)) if i["id"] == ids[10])
    assert summary["totalTokens"] == 20
    assert summary["spanCount"] == 2

    assert (await get_json(http, f"{collector.url}/healthz")) == (200, {"status": "ok"})
    async with http.get(f"{collector.url}/") as response:
        assert response.status == 200
        assert "svc.0" in await response.text()
    async with http.get(f"{collector.url}/traces/{ids[10]}") as response:
        assert response.status == 200
        assert "tool failed on 10" in await response.text()


async def all_page(http: aiohttp.ClientSession, collector: Collector) -> list[dict[str, Any]]:
    status, page = await get_json(http, f"{collector.url}/api/traces?limit=1000")
    assert status == 200
    return list(page["traces"])


async def test_wrong_key_is_401(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    """With keys set, a missing or wrong Bearer key is 401; any configured key is let in."""
    collector = await start_collector(
        "--key", "first-key", env={"TRACING_COLLECTOR_KEYS": "env-key, other"}
    )
    body = orjson.dumps({"sentAt": "2026-11-21T12:00:00Z", "traces": []})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "first-key"}):
        status, answer = await post_batch(http, collector, body, headers)
        assert status == 401
        assert "key" in answer["message"]
    for key in ("first-key", "env-key", "other"):
        status, _ = await post_batch(http, collector, body, {"Authorization": f"Bearer {key}"})
        assert status == 200
    status, _ = await get_json(http, f"{collector.url}/api/traces")
    assert status == 401
    assert (await get_json(http, f"{collector.url}/healthz"))[0] == 200

    tracer = AsyncTracing(endpoint=collector.url, publishable_key="wrong", **FAST)
    result = await tracer.send_batch([make_trace()])
    await tracer.shutdown()
    assert result.failed == 1
    assert result.results[0].status == 401
    async with AsyncTracing(endpoint=collector.url, publishable_key="env-key", **FAST) as good:
        await produce(good, 5, "keyed")
    assert good.stats().sent == 5


async def test_garbage_is_400_with_a_message(
    shared_collector: SharedCollector, http: aiohttp.ClientSession
) -> None:
    """Bodies that are not the envelope get 400 with a JSON message and no traceback."""
    collector = shared_collector
    bodies = [
        (b"garbage", {}),
        (b"\xff\xfe\x00", {}),
        (b"[1, 2]", {}),
        (b'{"traces": "all"}', {}),
        (b'{"sentAt": "soon", "traces": []}', {}),
        (b"not gzip", {"Content-Encoding": "gzip"}),
        (gzip.compress(b"{not json"), {"Content-Encoding": "gzip"}),
        (b"[" * 100_000 + b"]" * 100_000, {}),
    ]
    for body, headers in bodies:
        async with http.post(
            f"{collector.url}/api/traces/batch", data=body, headers=headers
        ) as response:
            text = await response.text()
            assert response.status == 400, (body[:20], text)
            assert orjson.loads(text)["message"]
            assert "Traceback" not in text
    status, answer = await post_batch(http, collector, b"{}", {"Content-Encoding": "br"})
    assert status == 415
    assert "gzip" in answer["message"]
    assert "Traceback" not in collector.output


async def test_bad_traces_are_rejected_alone(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Invalid traces fail in ``results`` with a message; the valid ones are stored."""
    good = orjson.loads(
        orjson.dumps({"id": "good", "name": "n", "startTime": "2026-11-21T12:00:00Z"})
    )
    batch = {
        "sentAt": "2026-11-21T12:00:01Z",
        "traces": [
            {"name": "no id", "startTime": "2026-11-21T12:00:00Z"},
            good,
            {"id": "bad-time", "name": "n", "startTime": "noon"},
            {
                "id": "bad-tokens",
                "name": "n",
                "startTime": "2026-11-21T12:00:00Z",
                "llmUsage": {"promptTokens": -5},
            },
            "not an object",
        ],
    }
    status, answer = await post_batch(http, collector, orjson.dumps(batch))
    assert status == 200
    results = answer["results"]
    assert [r["success"] for r in results] == [False, True, False, False, False]
    assert [r["id"] for r in results] == [None, "good", "bad-time", "bad-tokens", None]
    assert all(r["message"] for r in results)
    assert "RFC 3339" in results[2]["message"]
    assert "promptTokens" in results[3]["message"]
    _, page = await get_json(http, f"{collector.url}/api/traces")
    assert [t["id"] for t in page["traces"]] == ["good"]


async def test_oversize_is_413(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    """Over ``--max-body``: by Content-Length, while streaming, and after gunzip (a bomb)."""
    collector = await start_collector("--max-body", "20000")
    url = f"{collector.url}/api/traces/batch"
    big = b'{"traces": [], "pad": "' + b"x" * 30_000 + b'"}'
    async with http.post(url, data=big) as response:
        assert response.status == 413
        assert "limit" in (await response.json())["message"]

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b" " * 1000  # chunked: no Content-Length to check up front

    async with http.post(url, data=stream()) as response:
        assert response.status == 413

    bomb = gzip.compress(b'{"traces": [' + b" " * 10_000_000 + b"]}", 9)
    assert len(bomb) < 20000
    async with http.post(url, data=bomb, headers={"Content-Encoding": "gzip"}) as response:
        assert response.status == 413
        assert "decompressed" in (await response.json())["message"]

    small = gzip.compress(orjson.dumps({"traces": [], "pad": " " * 15_000}))
    async with http.post(url, data=small, headers={"Content-Encoding": "gzip"}) as response:
        assert response.status == 200

    huge = make_trace("huge", input="y" * 30_000)
    normal = [make_trace(f"n{i}") for i in range(5)]
    tracer = AsyncTracing(endpoint=collector.url, max_batch_size=10, **FAST)
    result = await tracer.send_batch([*normal, huge])
    await tracer.shutdown()
    assert result.successful == 5
    assert result.failed == 1
    assert next(r for r in result.results if r.id == huge.id).status == 413


async def test_resend_is_idempotent(collector: Collector, http: aiohttp.ClientSession) -> None:
    """A re-sent trace is acknowledged as success and stored once."""
    traces = [make_trace(f"t{i}", start=i) for i in range(20)]
    tracer = AsyncTracing(endpoint=collector.url, **FAST)
    first = await tracer.send_batch(traces)
    second = await tracer.send_batch([*traces[:10], *traces[:10]])
    await tracer.shutdown()
    assert first.successful == 20
    assert second.successful == 20
    status, page = await get_json(http, f"{collector.url}/api/traces")
    assert status == 200
    assert page["total"] == 20

    body = orjson.dumps(
        {"traces": [{"id": "dup", "name": "a", "startTime": "2026-11-21T12:00:00Z"}] * 2}
    )
    status, answer = await post_batch(http, collector, body)
    assert [r["success"] for r in answer["results"]] == [True, True]
    assert answer["results"][1]["message"] == "ok: already stored"
    assert (await get_json(http, f"{collector.url}/api/traces"))[1]["total"] == 21


async def test_three_sdk_instances_at_once_lose_nothing(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Three tracers sending concurrently: every trace of each is stored exactly once."""
    tracers = [
        AsyncTracing(endpoint=collector.url, flush_at=7, max_batch_size=13, **FAST)
        for _ in range(3)
    ]
    id_lists = await asyncio.gather(
        *(produce(tracer, 200, f"inst{n}") for n, tracer in enumerate(tracers))
    )
    stats = await asyncio.gather(*(tracer.shutdown() for tracer in tracers))
    assert [s.sent for s in stats] == [200, 200, 200]
    stored = await all_ids(http, collector)
    assert len(stored) == 600
    assert sorted(stored) == sorted(i for ids in id_lists for i in ids)


async def test_restart_keeps_the_data(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    """Traces stored before a restart on the same file are all there after it."""
    first = await start_collector()
    traces: list[Trace] = [
        make_trace(f"kept{i}", start=i, spans=[("llm", i, i + 0.5, None)]) for i in range(50)
    ]
    tracer = AsyncTracing(endpoint=first.url, **FAST)
    assert (await tracer.send_batch(traces)).successful == 50
    await tracer.shutdown()
    assert await first.stop() == 0
    assert "stopped" in first.output

    second = await start_collector(db=first.db)
    assert str(first.db) in second.output
    _, page = await get_json(http, f"{second.url}/api/traces?limit=1000")
    assert page["total"] == 50
    status, trace = await get_json(http, f"{second.url}/api/traces/{traces[7].id}")
    assert status == 200
    assert trace["name"] == "kept7"
    assert len(trace["spans"]) == 1


async def test_one_log_line_per_request(collector: Collector, http: aiohttp.ClientSession) -> None:
    """Each request logs method, path, status, trace count and milliseconds at INFO."""
    assert "listening on http://127.0.0.1:" in collector.output
    assert f"db: {collector.db}" in collector.output
    body = orjson.dumps({"traces": [make_wire(i) for i in range(3)]})
    await post_batch(http, collector, body)
    await get_json(http, f"{collector.url}/api/traces/missing")
    await collector.wait_for_line(
        r"INFO tracing\.collector: POST /api/traces/batch 200 traces=3 [\d.]+ms"
    )
    await collector.wait_for_line(
        r"INFO tracing\.collector: GET /api/traces/missing 404 traces=0 [\d.]+ms"
    )


def make_wire(i: int) -> dict[str, Any]:
    return {"id": f"w{i}", "name": "wire", "startTime": "2026-11-21T12:00:00Z"}


async def test_gzip_members_and_zlib_error_paths(
    shared_collector: SharedCollector, http: aiohttp.ClientSession
) -> None:
    """A multi-member gzip body is accepted whole; a raw deflate stream is refused."""
    collector = shared_collector
    body = orjson.dumps({"traces": [make_wire(1), make_wire(2)]})
    half = len(body) // 2
    members = gzip.compress(body[:half]) + gzip.compress(body[half:])
    status, answer = await post_batch(http, collector, members, {"Content-Encoding": "gzip"})
    assert status == 200
    assert len(answer["results"]) == 2
    status, _ = await post_batch(http, collector, zlib.compress(body), {"Content-Encoding": "gzip"})
    assert status == 400
