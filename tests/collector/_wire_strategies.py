"""Hypothesis strategies for wire traces: valid ones (every field the README allows, at any
shape the list permits) and invalid ones (each breaking exactly one rule of its list)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

__all__ = ["MAX_DEPTH", "invalid_trace", "json_values", "valid_trace"]

MAX_DEPTH = 128
_IDS = itertools.count()


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


# Each mutation breaks exactly one rule of the README's list ("What ingest accepts").
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
