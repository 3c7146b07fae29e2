"""Timeline geometry (``tracing.collector._timeline``): order, nesting, bar sizes."""

from __future__ import annotations

from typing import Any

import pytest

from tracing.collector._timeline import tick_labels, timeline


def t(seconds: float) -> str:
    return f"2026-11-21T12:00:{seconds:09.6f}Z"


def span(sid: str, start: float, end: float, parent: str | None = None) -> dict[str, Any]:
    return {"id": sid, "name": sid, "parentId": parent, "startTime": t(start), "endTime": t(end)}


def test_bars_are_placed_and_scaled_by_time() -> None:
    """Left and width are the span's start and duration as a share of the trace."""
    doc = {
        "startTime": t(0),
        "endTime": t(8),
        "spans": [span("a", 0, 1), span("b", 2, 4, "a"), span("c", 4, 8)],
    }
    rows, extent = timeline(doc)
    assert extent == 8
    geometry = {row.item.get("id"): (row.left, row.width) for row in rows}
    assert geometry["a"] == (0, 12.5)
    assert geometry["b"] == (25, 25)
    assert geometry["c"] == (50, 50)
    assert rows[0].depth == -1
    assert (rows[0].left, rows[0].width) == (0, 100)


def test_children_follow_their_parent() -> None:
    """Depth-first by start time: a child sits under its parent, one level deeper."""
    spans = [span("late", 5, 6), span("child", 1, 2, "root"), span("root", 0, 3)]
    rows, _ = timeline({"startTime": t(0), "endTime": t(6), "spans": spans})
    assert [(r.item["id"], r.depth) for r in rows[1:]] == [("root", 0), ("child", 1), ("late", 0)]


@pytest.mark.parametrize(
    "spans",
    [
        [span("orphan", 0, 1, "missing")],
        [span("x", 0, 1, "y"), span("y", 0, 1, "x")],
        [span("self", 0, 1, "self")],
    ],
)
def test_odd_parents_still_show_every_span(spans: list[dict[str, Any]]) -> None:
    """Unknown parents, cycles and self-parents never hide a span."""
    rows, _ = timeline({"startTime": t(0), "endTime": t(1), "spans": spans})
    assert sorted(r.item["id"] for r in rows[1:]) == sorted(s["id"] for s in spans)


def test_zero_length_trace_and_untimed_span() -> None:
    """An instant trace does not divide by zero; a span without times has no bar."""
    doc = {"startTime": t(0), "endTime": t(0), "spans": [{"id": "s", "name": "s"}]}
    rows, extent = timeline(doc)
    assert extent == 0
    assert rows[1].left is None
    assert rows[1].width is None


@pytest.mark.parametrize(
    "extent",
    [1e-6, 3e-6, 1e-5, 1e-4, 0.00037, 0.001, 0.0015, 0.004, 0.099, 0.5, 1.0, 2.5, 61, 3600],
)
def test_tick_labels_are_distinct_at_any_scale(extent: float) -> None:
    """A 0.1 ms trace was labelled "0.0 ms, 0.0 ms, 0.0 ms, 0.1 ms": every tick now reads
    differently, in one unit for the whole axis."""
    labels = tick_labels(extent)
    assert len(labels) == 5
    assert len(set(labels)) == 5, labels
    assert len({label.split(" ")[-1] for label in labels[1:]}) == 1, labels


def test_tick_labels_of_a_sub_millisecond_trace() -> None:
    assert tick_labels(0.0001) == ["0", "25 µs", "50 µs", "75 µs", "100 µs"]
