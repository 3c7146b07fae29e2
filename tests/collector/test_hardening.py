"""The collector attacked from outside: hostile bytes in headers, bodies, forms and Host,
each sent to the real process. Nothing may answer 5xx or put a traceback in its log."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest

from tests.collector.conftest import Collector, StartCollector, get_json, post_batch
from tracing.collector._auth import Keys

KEY = "sekret"
START = "2026-11-21T12:00:00.000000Z"
END = "2026-11-21T12:00:01.000000Z"
DEEP = "[" * 990 + "]" * 990


async def raw_request(collector: Collector, request: bytes) -> tuple[int, bytes]:
    """Send bytes exactly as given (no client normalises them); status and body."""
    port = int(collector.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def no_traceback(collector: Collector) -> None:
    assert "Traceback" not in collector.output, collector.output


def good(trace_id: str) -> bytes:
    return orjson.dumps({"id": trace_id, "name": "ok", "startTime": START, "endTime": END})


@pytest.mark.parametrize(
    "space",
    [
        "\u00a0",  # no-break space
        "\u3000",  # ideographic space
        "\u2028",  # line separator
        "\u0085",  # next line
        "\u2009",  # thin space
    ],
)
async def test_a_key_matches_only_byte_for_byte(
    start_collector: StartCollector, space: str
) -> None:
    """A key followed or preceded by Unicode whitespace is another key: 401 on the API,
    ingest included, and on the pages; only HTTP's spaces and tabs are removed."""
    collector = await start_collector("--key", KEY)
    for value in (f"Bearer {KEY}{space}", f"Bearer {space}{KEY}"):
        header = value.encode()
        for method, path in (("GET", "/api/traces"), ("POST", "/api/traces/batch"), ("GET", "/")):
            request = (
                (
                    f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    "Content-Length: 13\r\n"
                ).encode()
                + b"Authorization: "
                + header
                + b'\r\n\r\n{"traces":[]}'
            )
            status, _ = await raw_request(collector, request)
            assert status in (401, 303), (value, path, status)
    for header in (f"Bearer \t{KEY} \t".encode(), f"bearer  {KEY}".encode()):
        request = (
            b"GET /api/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Authorization: " + header + b"\r\n\r\n"
        )
        assert (await raw_request(collector, request))[0] == 200
    no_traceback(collector)


def test_a_session_expiry_in_other_digits_is_refused() -> None:
    """``str.isdigit()`` takes Arabic-Indic digits and ``int()`` reads them: a token whose
    expiry is rewritten in them is not the token that was signed."""
    keys = Keys([KEY])
    token = keys.session_for(KEY, now=1_000)
    expiry, _, mac = token.partition(".")
    other = "".join(chr(0x660 + int(d)) for d in expiry)
    assert keys.check_session(token, now=1_000)
    assert not keys.check_session(f"{other}.{mac}", now=1_000)


async def test_deep_json_in_any_field_costs_only_its_trace(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """~990-deep JSON in times, status, spans and span fields: each such trace is rejected
    by name, the valid ones beside it are stored, and nothing answers 500."""
    broken = {
        "deep-start": f'"startTime": {DEEP}',
        "deep-end": f'"startTime": "{START}", "endTime": {DEEP}',
        "deep-status": f'"startTime": "{START}", "status": {DEEP}',
        "deep-input": f'"startTime": "{START}", "input": {DEEP}',
        "deep-meta": f'"startTime": "{START}", "metadata": {{"k": {DEEP}}}',
        "deep-usage": f'"startTime": "{START}", "llmUsage": {{"promptTokens": {DEEP}}}',
        "deep-spans": f'"startTime": "{START}", "spans": {DEEP}',
        "deep-span-time": f'"startTime": "{START}", "spans": [{{"id": "s", "name": "n", '
        f'"endTime": {DEEP}}}]',
        "deep-span-id": f'"startTime": "{START}", "spans": [{{"id": {DEEP}, "name": "n"}}]',
        "deep-span-out": f'"startTime": "{START}", "spans": [{{"id": "s", "name": "n", '
        f'"output": {DEEP}}}]',
        "deeper-than-parser": f'"startTime": "{START}", "input": ' + "[" * 3000 + "]" * 3000,
    }
    parts = [good("good-1")]
    for trace_id, fields in broken.items():
        parts.append(f'{{"id": "{trace_id}", "name": "n", {fields}}}'.encode())
    parts.append(good("good-2"))
    status, body = await post_batch(http, collector, b'{"traces": [' + b",".join(parts) + b"]}")
    assert status == 200, body
    outcome = {r["id"]: r["success"] for r in body["results"]}
    assert outcome == {"good-1": True, **dict.fromkeys(broken, False), "good-2": True}
    for trace_id in ("good-1", "good-2"):
        assert (await get_json(http, f"{collector.url}/api/traces/{trace_id}"))[0] == 200
    status, body = await post_batch(http, collector, f'{{"sentAt": {DEEP}, "traces": []}}')
    assert status == 400
    assert "sentAt" in body["message"]
    no_traceback(collector)


async def test_span_times_may_be_missing_null_or_one_sided(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """README ("What ingest accepts"): a span's times may be missing or null; such spans
    are stored and shown."""
    spans: list[dict[str, Any]] = [
        {"id": "a", "name": "no-times"},
        {"id": "b", "name": "null-times", "startTime": None, "endTime": None},
        {"id": "c", "name": "end-only", "endTime": END},
        {"id": "d", "name": "start-only", "startTime": START},
    ]
    trace = {"id": "timeless", "name": "t", "startTime": START, "spans": spans}
    status, body = await post_batch(http, collector, orjson.dumps({"traces": [trace]}))
    assert status == 200
    assert body["results"][0]["success"], body
    status, doc = await get_json(http, f"{collector.url}/api/traces/timeless")
    assert [s["name"] for s in doc["spans"]] == [s["name"] for s in spans]
    async with http.get(f"{collector.url}/traces/timeless") as response:
        assert response.status == 200
        assert "end-only" in await response.text()
    no_traceback(collector)


async def test_stored_as_sent_values_render(
    collector: Collector, http: aiohttp.ClientSession
) -> None:
    """Fields the README gives no rule (tags, metadata, llmUsage, parentId, apiCallsCount) are
    stored as sent, and the list and trace pages show them without failing."""
    trace = {
        "id": "odd",
        "name": "odd",
        "startTime": START,
        "tags": 7,
        "metadata": [1, 2],
        "description": {"x": 1},
        "llmUsage": {"model": [1], "apiCallsCount": "many", "promptTokens": 3},
        "spans": [
            {"id": "s", "name": "n", "parentId": [1], "status": "weird", "llmUsage": "lots"},
            {"id": "t", "name": "m", "parentId": {"a": 1}, "llmUsage": {"apiCallsCount": 1e300}},
        ],
    }
    status, body = await post_batch(http, collector, orjson.dumps({"traces": [trace]}))
    assert status == 200
    assert body["results"][0]["success"], body
    for path in ("/", "/traces/odd", "/api/traces/odd", "/api/traces"):
        async with http.get(collector.url + path) as response:
            assert response.status == 200, path
    _, doc = await get_json(http, f"{collector.url}/api/traces/odd")
    assert doc["tags"] == 7
    assert doc["spans"][0]["parentId"] == [1]
    no_traceback(collector)


async def test_any_stored_id_reads_back(collector: Collector, http: aiohttp.ClientSession) -> None:
    """An id may hold any character; the routes' ``.+`` did not match a newline, so a
    trace stored with one was a 404 on the API and its page (found by the fuzz test)."""
    ids = ["line\nbreak", "cr\rhere", "a/b", "%41", " spaced ", "\u2028sep"]
    traces = [orjson.loads(good(trace_id)) for trace_id in ids]
    status, body = await post_batch(http, collector, orjson.dumps({"traces": traces}))
    assert status == 200
    assert all(r["success"] for r in body["results"]), body
    for trace_id in ids:
        quoted = quote(trace_id, safe="")
        status, doc = await get_json(http, f"{collector.url}/api/traces/{quoted}")
        assert (status, doc["id"]) == (200, trace_id)
        async with http.get(f"{collector.url}/traces/{quoted}") as response:
            assert response.status == 200, trace_id
    no_traceback(collector)


@pytest.mark.parametrize("param", ["limit", "offset"])
async def test_a_number_too_long_for_int_is_a_400(
    collector: Collector, http: aiohttp.ClientSession, param: str
) -> None:
    """``int()`` refuses more than 4,300 digits with a ValueError, which was a 500."""
    for path in ("/api/traces", "/"):
        async with http.get(f"{collector.url}{path}?{param}={'9' * 5000}") as response:
            assert response.status == 400, path
            assert param in await response.text()
    no_traceback(collector)


@pytest.mark.parametrize("host", ["127.0.0.1:99999", "xn--", "xn--.example", "[::1", "a b", "%"])
async def test_a_hostile_host_header_is_never_a_500(collector: Collector, host: str) -> None:
    """The Host check reads the header as text: yarl raised on a bad port or IDNA label."""
    request = f"GET /api/traces HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    status, _ = await raw_request(collector, request.encode())
    assert status in (200, 400, 403)
    no_traceback(collector)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded; charset=nope", b"key=sekret"),
        ("application/x-www-form-urlencoded; charset=utf-16", b"key=a"),
        ("multipart/form-data; boundary=zz", b"--zz\r\nbad"),
        ("multipart/form-data", b"x"),
    ],
)
async def test_a_malformed_signin_form_is_a_400(
    start_collector: StartCollector, http: aiohttp.ClientSession, content_type: str, body: bytes
) -> None:
    """Whatever the form parser raises (LookupError for an unknown charset, ...) is a 400."""
    collector = await start_collector("--key", KEY)
    headers = {"Content-Type": content_type}
    async with http.post(f"{collector.url}/signin", data=body, headers=headers) as response:
        assert response.status == 400
    no_traceback(collector)


async def test_content_encoding_is_matched_exactly(collector: Collector) -> None:
    """``gzip`` followed by a no-break space is not gzip: 415, not a gunzip attempt."""
    request = (
        b"POST /api/traces/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Encoding: gzip\xc2\xa0\r\nContent-Length: 13\r\n\r\n"
        b'{"traces":[]}'
    )
    status, body = await raw_request(collector, request)
    assert status == 415, body
    no_traceback(collector)


async def test_a_malformed_request_is_one_warning_line(collector: Collector) -> None:
    """A header with a control byte is answered 400 by aiohttp's parser, which logged it
    with a traceback at ERROR; now one WARNING line names the client and the reason."""
    request = b"GET /api/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\x1cb\r\n\r\n"
    status, _ = await raw_request(collector, request)
    assert status == 400
    await collector.wait_for_line(r"WARNING aiohttp\.server: refused a malformed request from")
    no_traceback(collector)
