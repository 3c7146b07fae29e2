"""Hypothesis against the real collector process: the ingest route with mixed batches and
raw bodies, the query routes with random query strings and ids.

Asserted for every example: never a 5xx; every valid trace of a mixed batch stored and
readable as sent; every invalid one named in ``results``; and, at the end, no traceback
in the collector's log. The ``ci`` profile (tests/conftest.py) makes the run
deterministic and bounded.
"""

from __future__ import annotations

import http.client
import itertools
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.collector.conftest import collector_env

_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+) ")
_IDS = itertools.count()
MAX_DEPTH = 128
KEY = "fuzz-key"


class SyncCollector:
    """One collector process for the module, spoken to with http.client (hypothesis
    drives plain functions)."""

    def __init__(self, tmp: Path, *args: str) -> None:
        command = [sys.executable, "-m", "tracing.collector", "--port", "0", "--db"]
        self.proc = subprocess.Popen(
            [*command, str(tmp / "c.db"), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=collector_env(),
        )
        self.log: list[str] = []
        self._port: int | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(30) or self._port is None:
            self.proc.kill()
            raise AssertionError("collector did not start:\n" + "\n".join(self.log))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.log.append(line)
            if self._port is None and (found := _LISTENING.search(line)):
                self._port = int(found.group(1))
                self._ready.set()
        self._ready.set()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        assert self._port is not None
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(15)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def _run(tmp: Path, *args: str) -> Iterator[SyncCollector]:
    collector = SyncCollector(tmp, *args)
    yield collector
    collector.stop()
    log = "\n".join(collector.log)
    assert "Traceback" not in log, log
    assert collector.proc.returncode == 0, log


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncCollector]:
    yield from _run(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncCollector]:
    """A collector with a key: the key and session checks run on every request."""
    yield from _run(tmp_path_factory.mktemp("fuzz-keyed"), "--key", KEY)


# Strategies ------------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# Deep values around the limit: 128 levels is allowed, 129 and beyond (past orjson's
# 1,024 too) reject the trace.
allowed_deep = st.integers(min_value=1, max_value=MAX_DEPTH).map(nested)
too_deep = st.sampled_from([MAX_DEPTH + 1, 500, 990, 1100, 3000]).map(nested)
base = datetime(2020, 1, 1, tzinfo=UTC)
moments = st.integers(min_value=0, max_value=10**15).map(
    lambda us: base + timedelta(microseconds=us)
)
zones = st.sampled_from(["Z", "z", "+00:00", "+05:30", "-08:00"])


def rfc3339(when: datetime, zone: str) -> str:
    if zone in ("Z", "z"):
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + zone
    sign = 1 if zone[0] == "+" else -1
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * sign
    return (when + offset).strftime("%Y-%m-%dT%H:%M:%S.%f") + zone


@st.composite
def span_times(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(moments)
    end = start + timedelta(microseconds=draw(st.integers(0, 10**9)))
    times: dict[str, Any] = {}
    for field, when in (("startTime", start), ("endTime", end)):
        choice = draw(st.sampled_from(["set", "null", "missing"]))
        if choice == "set":
            times[field] = rfc3339(when, draw(zones))
        elif choice == "null":
            times[field] = None
    return times


usage = st.fixed_dictionaries(
    {},
    optional={
        "promptTokens": st.integers(0, 2**40),
        "completionTokens": st.integers(0, 2**40),
        "model": json_values,
        "apiCallsCount": json_values,
    },
)


@st.composite
def valid_span(draw: st.DrawFn) -> dict[str, Any]:
    span: dict[str, Any] = {
        "id": draw(st.text(max_size=256)),
        "name": draw(st.text(max_size=40)),
        **draw(span_times()),
    }
    for field in ("parentId", "status", "error", "input", "output", "metadata"):
        if draw(st.booleans()):
            span[field] = draw(st.one_of(json_values, allowed_deep))
    if draw(st.booleans()):
        span["llmUsage"] = draw(st.one_of(st.none(), usage))
    return span


@st.composite
def valid_trace(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(moments)
    trace: dict[str, Any] = {
        "id": f"{next(_IDS)}-{draw(st.text(max_size=40))}",
        "name": draw(st.text(min_size=1, max_size=1024)),
        "startTime": rfc3339(start, draw(zones)),
        "status": draw(st.sampled_from(["ok", "error", None])),
    }
    if draw(st.booleans()):
        trace["endTime"] = rfc3339(start + timedelta(microseconds=draw(st.integers(0, 10**9))), "Z")
    for field in ("description", "error", "input", "output", "metadata", "tags", "duration"):
        if draw(st.booleans()):
            trace[field] = draw(st.one_of(json_values, allowed_deep))
    if draw(st.booleans()):
        trace["llmUsage"] = draw(st.one_of(st.none(), usage))
    trace["spans"] = draw(st.lists(valid_span(), max_size=3))
    return trace


def _broken_span(trace: dict[str, Any], span: dict[str, Any]) -> dict[str, Any]:
    trace["spans"] = [*trace["spans"], span]
    return trace


# Each mutation breaks exactly one rule of API.md's list.
_MUTATIONS: list[Any] = [
    lambda t, v: {**t, "id": v} if not isinstance(v, str) else {**t, "id": ""},
    lambda t, v: {**t, "id": "i" * 257},
    lambda t, v: {k: x for k, x in t.items() if k != "name"},
    lambda t, v: {**t, "name": "n" * 1025},
    lambda t, v: {**t, "name": v} if not isinstance(v, str) else {**t, "name": ""},
    lambda t, v: {k: x for k, x in t.items() if k != "startTime"},
    lambda t, v: {**t, "startTime": v if not isinstance(v, str) else "2026-11-21"},
    lambda t, v: {**t, "startTime": "2026-11-21T12:00:00Z", "endTime": "2026-11-21T11:00:00Z"},
    lambda t, v: {**t, "status": v if v is not None else "failed"},
    lambda t, v: {**t, "llmUsage": {"promptTokens": -1}},
    lambda t, v: {**t, "llmUsage": {"completionTokens": 1.5}},
    lambda t, v: {**t, "spans": v if not isinstance(v, list) and v is not None else "x"},
    lambda t, v: _broken_span(t, v if not isinstance(v, dict) else {"name": "no id"}),
    lambda t, v: _broken_span(t, {"id": "s", "name": "n" * 1025}),
    lambda t, v: _broken_span(t, {"id": "s" * 257, "name": "n"}),
    lambda t, v: _broken_span(t, {"id": "s", "name": "n", "startTime": "noon"}),
    lambda t, v: _broken_span(
        t,
        {
            "id": "s",
            "name": "n",
            "startTime": "2026-01-02T00:00:00Z",
            "endTime": "2026-01-01T00:00:00Z",
        },
    ),
]


@st.composite
def invalid_trace(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    trace = draw(valid_trace())
    if draw(st.booleans()):
        field = draw(st.sampled_from(["input", "output", "metadata", "tags", "description"]))
        broken = {**trace, field: draw(too_deep)}
    else:
        mutate = draw(st.sampled_from(_MUTATIONS))
        broken = mutate(trace, draw(json_values))
    trace_id = broken.get("id")
    return broken, trace_id if isinstance(trace_id, str) else None


# Tests -----------------------------------------------------------------------------------


def _encode(trace: dict[str, Any]) -> bytes:
    # orjson refuses > 254 levels; the deep ones are written by hand.
    try:
        return orjson.dumps(trace)
    except orjson.JSONEncodeError:
        parts = [
            orjson.dumps(k) + b":" + (_deep_text(v) if k in _DEEP_FIELDS else orjson.dumps(v))
            for k, v in trace.items()
        ]
        return b"{" + b",".join(parts) + b"}"


_DEEP_FIELDS = ("input", "output", "metadata", "tags", "description")


def _deep_text(value: Any) -> bytes:
    depth = 0
    while isinstance(value, list) and len(value) == 1:
        depth += 1
        value = value[0]
    return b"[" * depth + orjson.dumps(value) + b"]" * depth


@given(
    st.lists(
        st.one_of(
            valid_trace().map(lambda t: (t, True)), invalid_trace().map(lambda p: (p, False))
        ),
        min_size=1,
        max_size=6,
    )
)
def test_mixed_batches(server: SyncCollector, items: list[tuple[Any, bool]]) -> None:
    """Every valid trace is stored and reads back as sent; every invalid one is named."""
    traces = [item if ok else item[0] for item, ok in items]
    body = b'{"sentAt": null, "traces": [' + b",".join(map(_encode, traces)) + b"]}"
    status, answer = server.request("POST", "/api/traces/batch", body)
    assert status == 200, answer
    results = orjson.loads(answer)["results"]
    assert len(results) == len(items)
    for (item, ok), result in zip(items, results, strict=True):
        if ok:
            assert result == {"id": item["id"], "success": True, "message": "ok"}, result
            status, stored = server.request("GET", "/api/traces/" + quote(item["id"], safe=""))
            assert status == 200, (item["id"], stored)
            doc = orjson.loads(stored)
            assert doc["id"] == item["id"]
            assert doc["name"] == item["name"]
            for field in ("input", "output", "description", "error"):
                assert doc[field] == item.get(field), field
            assert [s["id"] for s in doc["spans"]] == [s["id"] for s in item["spans"]]
        else:
            assert result["success"] is False
            assert result["id"] == item[1]
            assert result["message"]


raw_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(orjson.dumps),
    st.dictionaries(st.sampled_from(["traces", "sentAt", "x"]), json_values, max_size=3).map(
        orjson.dumps
    ),
    st.sampled_from([b"[" * n + b"]" * n for n in (10, 1023, 1024, 1025, 5000)]),
    st.sampled_from([b'{"traces": [' + b"[" * n for n in (10, 1100, 5000)]),
    st.sampled_from([b'{"traces": ["\\ud800", {"id": "\\udfff"}]}', b'{"traces": [1e999]}']),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Encoding": st.sampled_from(["gzip", "GZIP", "identity", "br", "", "x-gzip"]),
        "Content-Type": st.sampled_from(["application/json", "text/plain", "a/b; charset=nope"]),
        "Authorization": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255)),
    },
)


@given(raw_bodies, headers)
def test_any_body_is_answered_without_a_5xx(
    server: SyncCollector, body: bytes, extra: dict[str, str]
) -> None:
    """Random bytes, random JSON and deep or broken envelopes: 200, 400, 413 or 415."""
    status, answer = server.request("POST", "/api/traces/batch", body, extra)
    assert status in (200, 400, 413, 415), (status, answer)


_query_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="&=#"), max_size=12)
_query_keys = st.one_of(
    st.sampled_from(["limit", "offset", "name", "status", "cursor", "next"]), _query_text
)
_query_values = st.one_of(
    _query_text,
    st.integers().map(str),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
    st.sampled_from(["", "0", "-1", "1001", "1e3", "²", "ok", "error", "%ff", "%ED%A0%80"]),
)


@given(
    st.sampled_from(["/api/traces", "/", "/signin", "/healthz"]),
    st.lists(st.tuples(_query_keys, _query_values), max_size=4),
)
def test_any_query_string_is_answered_without_a_5xx(
    server: SyncCollector, path: str, pairs: list[tuple[str, str]]
) -> None:
    """Unknown parameters, bad values, repeats, percent-escaped bytes: never a 5xx."""
    query = "&".join(f"{quote(k, safe='%')}={quote(v, safe='%')}" for k, v in pairs)
    status, answer = server.request("GET", f"{path}?{query}")
    assert status < 500, (status, answer[:200])


@given(
    st.sampled_from(["/api/traces/", "/traces/"]),
    st.one_of(
        st.text(min_size=1, max_size=300).map(lambda t: quote(t, safe="")),
        st.binary(min_size=1, max_size=40).map(lambda b: quote(b, safe="")),
        st.sampled_from(["%ED%A0%80", "%ff", "%00", "..%2F..", "a%2Fb"]),
    ),
)
def test_any_trace_id_is_answered_without_a_5xx(
    server: SyncCollector, prefix: str, trace_id: str
) -> None:
    """An unknown id in any bytes is a 404 (or a 200 for one that exists), never a 5xx."""
    status, answer = server.request("GET", prefix + trace_id)
    assert status in (200, 404), (status, answer[:200])


_header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=80)


@given(
    st.sampled_from(
        [("GET", "/"), ("GET", "/api/traces"), ("GET", "/traces/x"), ("POST", "/api/traces/batch")]
    ),
    st.one_of(_header_text, st.sampled_from([f"Bearer {KEY}", f"Bearer {KEY}\xa0", "Bearer"])),
    st.one_of(_header_text, _header_text.map(lambda t: f"tracing_session={t}")),
)
def test_any_key_or_cookie_is_answered_without_a_5xx(
    keyed: SyncCollector, route: tuple[str, str], authorization: str, cookie: str
) -> None:
    """Random Authorization and Cookie headers on a keyed collector: never a 5xx, and
    only the exact key (or HTTP's spaces and tabs around it) lets a request in."""
    method, path = route
    body = b'{"traces": []}' if method == "POST" else None
    headers = {"Authorization": authorization, "Cookie": cookie}
    status, answer = keyed.request(method, path, body, headers)
    assert status < 500, (status, answer[:200])
    if status in (200, 404):
        assert authorization.startswith("Bearer ")
        assert authorization[len("Bearer ") :].strip(" \t") == KEY


@given(
    st.sampled_from(
        ["application/x-www-form-urlencoded", "multipart/form-data; boundary=b", "text/plain"]
    ),
    st.binary(max_size=200),
)
def test_any_signin_form_is_answered_without_a_5xx(
    keyed: SyncCollector, content_type: str, body: bytes
) -> None:
    status, answer = keyed.request("POST", "/signin", body, {"Content-Type": content_type})
    assert status in (303, 400, 401), (status, answer[:200])
