"""The README's collector section ("The collector and its viewer") checked clause by
clause from outside, as a foreign test suite would: the real process on each store, one
collector per module where tests only add traces of their own and read them back."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from tests.collector._contract import (
    END,
    FAST,
    MAX_BODY,
    START,
    database,
    get,
    nested,
    post,
    span,
    wire,
)
from tests.collector.conftest import Collector, at, collectors
from tracing import AsyncTracing, LlmUsage, Span, Trace
from tracing._wire import trace_to_wire

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgres"])
async def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Collector]:
    """A collector without keys, ``--max-body 20000``; each test uses its own ids/names."""
    db = await database(request, tmp_path_factory.mktemp("contract"))
    async with collectors(db) as start:
        yield await start("--max-body", str(MAX_BODY))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# (id suffix, changes, accepted): each rule of the README's list ("What ingest accepts") at
# its boundary and past it.
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("name-1024", {"name": "n" * 1024}, True),
    ("name-1025", {"name": "n" * 1025}, False),
    ("name-empty", {"name": ""}, False),
    ("name-missing", {"name": ...}, False),
    ("name-number", {"name": 7}, False),
    ("end-equals-start", {"endTime": START}, True),
    ("end-before-start", {"endTime": "2026-11-21T11:59:59.999999Z"}, False),
    ("offset-times", {"startTime": "2026-11-21T13:00:00+01:00"}, True),
    ("leap-second", {"startTime": "2016-12-31T23:59:60Z", "endTime": "2017-01-01T00:00:00Z"}, True),
    ("time-no-zone", {"startTime": "2026-11-21T12:00:00"}, False),
    ("time-61-seconds", {"startTime": "2016-12-31T23:59:61Z"}, False),
    ("time-feb-30", {"startTime": "2026-02-30T12:00:00Z"}, False),
    ("time-number", {"endTime": 1763726400}, False),
    ("status-error", {"status": "error"}, True),
    ("status-other", {"status": "failed"}, False),
    ("tokens-zero", {"llmUsage": {"promptTokens": 0, "completionTokens": 0}}, True),
    ("tokens-negative", {"llmUsage": {"promptTokens": -1}}, False),
    ("tokens-fraction", {"llmUsage": {"completionTokens": 1.5}}, False),
    ("tokens-float-one", {"llmUsage": {"completionTokens": 1.0}}, False),
    ("tokens-boolean", {"llmUsage": {"promptTokens": True}}, False),
    ("tokens-string", {"llmUsage": {"promptTokens": "3"}}, False),
    ("span-tokens-negative", {"spans": [span(llmUsage={"completionTokens": -2})]}, False),
    ("spans-empty", {"spans": []}, True),
    ("spans-object", {"spans": {"id": "s", "name": "n"}}, False),
    ("spans-string", {"spans": "s"}, False),
    ("span-not-object", {"spans": [span(), 3]}, False),
    ("span-null", {"spans": [None]}, False),
    ("span-id-256", {"spans": [span(id="s" * 256, name="n" * 1024)]}, True),
    ("span-id-257", {"spans": [span(id="s" * 257)]}, False),
    ("span-name-1025", {"spans": [span(name="n" * 1025)]}, False),
    ("span-id-missing", {"spans": [span(id=...)]}, False),
    ("span-name-number", {"spans": [span(name=1)]}, False),
    ("span-times-missing", {"spans": [span()]}, True),
    ("span-times-null", {"spans": [span(startTime=None, endTime=None)]}, True),
    ("span-start-only", {"spans": [span(startTime=START)]}, True),
    ("span-end-only", {"spans": [span(endTime=END)]}, True),
    ("span-end-equals-start", {"spans": [span(startTime=END, endTime=END)]}, True),
    ("span-end-before-start", {"spans": [span(startTime=END, endTime=START)]}, False),
    ("span-time-bad", {"spans": [span(startTime="noon")]}, False),
    ("input-128", {"input": nested(128), "output": nested(128)}, True),
    ("input-129", {"input": nested(129)}, False),
    ("output-129", {"output": nested(129)}, False),
    ("metadata-128", {"metadata": {"k": nested(127)}}, True),
    ("metadata-129", {"metadata": {"k": nested(128)}}, False),
    ("error-129", {"error": nested(129)}, False),
    ("tags-129", {"tags": nested(129)}, False),
    ("span-input-128", {"spans": [span(input=nested(128), metadata={"k": nested(127)})]}, True),
    ("span-output-129", {"spans": [span(output=nested(129))]}, False),
    ("span-metadata-129", {"spans": [span(metadata={"k": nested(128)})]}, False),
    # "anywhere in the trace": a field the collector does not know is in the trace too.
    ("unknown-field-129", {"extra": nested(129)}, False),
    ("unknown-span-field-129", {"spans": [span(extra=nested(129))]}, False),
    ("unknown-field-128", {"extra": nested(128)}, True),
]


async def test_each_rule_accepts_at_its_boundary_and_rejects_past_it(
    served: Collector, client: aiohttp.ClientSession
) -> None:
    """One batch holding every case and non-objects: each result says what its rule
    says, with a message; every accepted trace reads back, no rejected one does."""
    traces: list[Any] = [wire(f"rule-{case}", **changes) for case, changes, _ in CASES]
    boundary_ids = ["i" * 256, "\U0001f600" * 256]  # characters, not bytes or UTF-16 units
    traces += [wire(trace_id) for trace_id in boundary_ids]
    traces += [wire("i" * 257), wire(""), wire(...), wire(5), 5, None, "trace", [], True]
    status, answer = await post(client, served, orjson.dumps({"traces": traces}))
    assert status == 200, answer
    results = answer["results"]
    assert len(results) == len(traces)
    assert all(isinstance(r["message"], str) and r["message"] for r in results)
    got = {case: r["success"] for (case, _, _), r in zip(CASES, results, strict=False)}
    assert got == {case: accepted for case, _, accepted in CASES}
    tail = results[len(CASES) :]
    assert [r["success"] for r in tail] == [True, True] + [False] * 9
    assert [r["id"] for r in tail[-5:]] == [None] * 5
    for trace_id, accepted in [
        *((f"rule-{case}", accepted) for case, _, accepted in CASES),
        *((trace_id, True) for trace_id in boundary_ids),
        ("i" * 257, False),
    ]:
        quoted = aiohttp.helpers.quote(trace_id, safe="")  # type: ignore[attr-defined]
        code, doc = await get(client, f"{served.url}/api/traces/{quoted}")
        assert code == (200 if accepted else 404), trace_id
        if accepted:
            assert doc["id"] == trace_id
    assert "Traceback" not in served.output


async def test_a_number_beyond_a_double_costs_only_its_trace(
    served: Collector, client: aiohttp.ClientSession
) -> None:
    """``1e400`` is JSON (RFC 8259's grammar) that no double holds: the trace holding it
    is rejected with a message, the valid trace beside it is stored."""
    body = (
        b'{"traces": [{"id": "huge-number", "name": "n", "startTime": "' + START.encode() + b'",'
        b' "metadata": {"x": 1e400}}, ' + orjson.dumps(wire("beside-huge-number")) + b","
        b' {"id": "huge-tokens", "name": "n", "startTime": "' + START.encode() + b'",'
        b' "llmUsage": {"promptTokens": -1E+999}}]}'
    )
    status, answer = await post(client, served, body)
    assert status == 200, answer
    assert [r["success"] for r in answer["results"]] == [False, True, False]
    assert all(r["message"] for r in answer["results"])
    assert answer["results"][0]["id"] == "huge-number"
    assert (await get(client, f"{served.url}/api/traces/beside-huge-number"))[0] == 200
    assert (await get(client, f"{served.url}/api/traces/huge-number"))[0] == 404


def padded(size: int, trace_id: str) -> bytes:
    """A batch body of exactly ``size`` bytes holding one valid trace."""
    head = orjson.dumps({"traces": [wire(trace_id)], "pad": ""})
    body = head[:-2] + b" " * (size - len(head)) + head[-2:]
    assert len(body) == size
    return body


async def test_max_body_holds_exactly_at_its_limit(
    served: Collector, client: aiohttp.ClientSession
) -> None:
    """``--max-body`` bytes are accepted and one more is 413: with a Content-Length,
    chunked (counted as received), and as the decompressed size of a gzip body."""

    async def chunked(body: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    for size, expected in ((MAX_BODY, 200), (MAX_BODY + 1, 413)):
        for kind in ("length", "chunked", "gzip"):
            body = padded(size, f"max-body-{kind}-{size}")
            headers = {"Content-Type": "application/json"}
            data: Any = body
            if kind == "chunked":
                data = chunked(body)
            elif kind == "gzip":
                data = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            url = f"{served.url}/api/traces/batch"
            async with client.post(url, data=data, headers=headers) as response:
                assert response.status == expected, (kind, size)
                answer = await response.json()
            if expected == 200:
                assert answer["results"][0]["success"] is True
            else:
                assert "limit" in answer["message"]


async def test_the_list_shape_order_filters_and_paging(
    served: Collector, client: aiohttp.ClientSession
) -> None:
    """``{"total", "limit", "offset", "nextCursor", "traces"}``, newest ``startTime``
    first whatever the arrival order; ``name=``, ``status=``, ``cursor=`` to a null
    ``nextCursor``, and ``offset`` giving the same pages."""
    starts = [3, 0, 4, 1, 2]
    traces = [
        wire(
            f"list-{s}",
            name="contract.list",
            startTime=f"2026-11-21T12:00:0{s}.000000Z",
            endTime=f"2026-11-21T12:00:0{s}.500000Z",
            status="error" if s % 2 else "ok",
        )
        for s in starts
    ]
    status, _ = await post(client, served, orjson.dumps({"traces": traces}))
    assert status == 200
    base = f"{served.url}/api/traces?name=contract.list"
    status, page = await get(client, base)
    assert status == 200
    assert set(page) == {"total", "limit", "offset", "nextCursor", "traces"}
    assert (page["total"], page["limit"], page["offset"], page["nextCursor"]) == (5, 50, 0, None)
    newest_first = [f"list-{s}" for s in (4, 3, 2, 1, 0)]
    assert [t["id"] for t in page["traces"]] == newest_first

    seen: list[str] = []
    url = f"{base}&limit=2"
    while True:
        status, page = await get(client, url)
        assert status == 200
        assert page["total"] == 5
        offset_page = await get(client, f"{base}&limit=2&offset={len(seen)}")
        assert [t["id"] for t in offset_page[1]["traces"]] == [t["id"] for t in page["traces"]]
        seen += [t["id"] for t in page["traces"]]
        if page["nextCursor"] is None:
            break
        url = f"{base}&limit=2&cursor={page['nextCursor']}"
    assert seen == newest_first

    status, page = await get(client, f"{base}&status=error")
    assert (page["total"], [t["id"] for t in page["traces"]]) == (2, ["list-3", "list-1"])
    status, page = await get(client, f"{base}&status=ok&limit=1")
    assert page["total"] == 3
    assert page["nextCursor"] is not None
    _, last = await get(client, f"{base}&status=ok&limit=2&offset=2")
    assert ([t["id"] for t in last["traces"]], last["nextCursor"]) == (["list-0"], None)


# Every key of the wire body (README "How it works").
WIRE_KEYS = {
    "id", "name", "description", "startTime", "endTime", "duration", "status", "error",
    "input", "output", "inputSummary", "outputSummary", "metadata", "tags", "llmUsage",
    "spans",
}  # fmt: skip
SPAN_KEYS = {
    "id", "parentId", "name", "startTime", "endTime", "duration", "status", "error",
    "input", "output", "metadata", "llmUsage",
}  # fmt: skip
RFC3339_US = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def full_trace() -> Trace:
    """A trace setting every field of the wire body, spans with a parent."""
    start = at(3600).replace(microsecond=123456)
    trace = Trace(
        "summarize",
        description="every field",
        start_time=start,
        end_time=start + timedelta(seconds=1, microseconds=1),
        status="error",
        error="boom",
        input={"q": "text", "n": [1, 2.5, None, True]},
        output="out",
        input_summary="in-sum",
        output_summary="out-sum",
        metadata={"user": "u1", "nested": {"a": [1]}},
        tags=["a", "b"],
        llm_usage=LlmUsage("gpt-4o", "openai", 10, 20, 2),
    )
    root = Span(
        "llm",
        start_time=start,
        end_time=start.replace(microsecond=0) + timedelta(seconds=1),
        input="prompt",
        output={"text": "answer"},
        metadata={"m": 1},
        llm_usage=LlmUsage("claude", "anthropic", 3, 4),
    )
    child = Span(
        "tool",
        parent_id=root.id,
        start_time=start + timedelta(microseconds=7),
        end_time=start + timedelta(microseconds=9),
        status="error",
        error="tool failed",
    )
    trace.spans.extend([root, child])
    return trace


@pytest.mark.parametrize("compression", [None, "gzip"])
async def test_every_wire_field_reads_back_as_the_sdk_sent_it(
    served: Collector, client: aiohttp.ClientSession, compression: str | None
) -> None:
    """What the SDK sends (camelCase, microsecond ``Z`` times, llmUsage, spans with
    parentId) comes back from ``GET /api/traces/{id}`` identically, field by field."""
    trace = full_trace()
    async with AsyncTracing(endpoint=served.url, compression=compression, **FAST) as tracer:
        result = await tracer.send_batch([trace])
    assert result.successful == 1, result
    sent = orjson.loads(orjson.dumps(trace_to_wire(trace)))
    status, doc = await get(client, f"{served.url}/api/traces/{trace.id}")
    assert status == 200
    assert doc["startTime"].endswith(".123456Z")
    assert doc["spans"][1]["parentId"] == trace.spans[0].id
    assert {k: doc.get(k) for k in sent} == sent
    assert set(sent) >= WIRE_KEYS
    assert set(sent["spans"][0]) >= SPAN_KEYS
    assert doc["llmUsage"] == {
        "model": "gpt-4o",
        "provider": "openai",
        "promptTokens": 10,
        "completionTokens": 20,
        "apiCallsCount": 2,
    }
    times = [doc["startTime"], doc["endTime"]]
    times += [s[k] for s in doc["spans"] for k in ("startTime", "endTime")]
    assert all(RFC3339_US.fullmatch(t) for t in times), times
    assert doc["spans"][0]["endTime"].endswith(":01.000000Z")
    status, missing = await get(client, f"{served.url}/api/traces/no-such-trace")
    assert status == 404
    assert missing["message"]
    assert (await get(client, f"{served.url}/healthz"))[0] == 200


async def test_a_resent_trace_is_acknowledged_and_stored_once(
    served: Collector, client: aiohttp.ClientSession
) -> None:
    """The same id again, alone, twice in one batch, or with other content: success each
    time, one trace in the list, and the first version kept."""
    first = wire("resent", name="contract.resent", input="first")
    body = orjson.dumps({"traces": [first]})
    assert (await post(client, served, body))[1]["results"][0]["success"] is True
    again = orjson.dumps({"traces": [first, first, {**first, "input": "changed"}]})
    status, answer = await post(client, served, again)
    assert status == 200
    assert [r["success"] for r in answer["results"]] == [True, True, True]
    _, page = await get(client, f"{served.url}/api/traces?name=contract.resent")
    assert page["total"] == 1
    _, doc = await get(client, f"{served.url}/api/traces/resent")
    assert doc["input"] == "first"
