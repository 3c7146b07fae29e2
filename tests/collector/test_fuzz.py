"""Hypothesis against the real collector process: the ingest route with mixed batches and
raw bodies, the query routes with random query strings and ids, and a keyed collector's
headers and sign-in form.

Asserted for every example: never a 5xx; every valid trace of a mixed batch stored and
readable as sent; every invalid one named in ``results``; and, at the end, no traceback
in the collector's log. The ``ci`` profile (tests/conftest.py) makes the run
deterministic and bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.collector._fuzz_server import SyncCollector
from tests.collector._wire_strategies import invalid_trace, json_values, valid_trace

KEY = "fuzz-key"


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
