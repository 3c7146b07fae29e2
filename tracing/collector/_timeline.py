"""Laying a trace's spans out on a timeline: order, nesting depth, and bar geometry.

Pure functions over the stored wire document, kept apart from the HTML so the geometry
is tested directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from tracing._wire import parse_time

__all__ = ["TICKS", "Row", "tick_labels", "timeline"]

TICKS = 4  # intervals on the axis: labels at 0, 25, 50, 75 and 100 %
_UNITS = ((60.0, "min"), (1.0, "s"), (1e-3, "ms"), (1e-6, "µs"))


@attrs.frozen
class Row:
    """One timeline row: the trace itself (``depth`` -1) or a span.

    ``left`` and ``width`` are percentages of the trace's extent; None when the span has
    no times to place it by.
    """

    item: Mapping[str, Any]
    depth: int
    left: float | None
    width: float | None
    anchor: str


def tick_labels(extent: float) -> list[str]:
    """Labels for the axis ticks of a trace ``extent`` seconds long, all distinct: one
    unit for the whole axis (the largest the step fits in) and just enough decimals.

    ``0.0 ms, 0.0 ms, 0.1 ms`` was what a 0.1 ms trace got; it is ``0, 25 µs, 50 µs, ...``.
    """
    if not extent > 0 or not math.isfinite(extent):
        return ["0"] + ["—"] * TICKS
    step = extent / TICKS
    scale, unit = next(((s, u) for s, u in _UNITS if step >= s), _UNITS[-1])
    value = step / scale
    decimals = 0
    while decimals < 6 and len({f"{value * i:.{decimals}f}" for i in range(TICKS + 1)}) <= TICKS:
        decimals += 1
    return ["0"] + [f"{value * i:.{decimals}f} {unit}" for i in range(1, TICKS + 1)]


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def timeline(doc: Mapping[str, Any]) -> tuple[list[Row], float]:
    """Rows in display order (the trace, then spans depth-first by start time) and the
    extent in seconds the percentages are relative to."""
    spans: list[Mapping[str, Any]] = [s for s in doc.get("spans") or [] if isinstance(s, Mapping)]
    start = _when(doc.get("startTime"))
    starts = [t for t in [start, *(_when(s.get("startTime")) for s in spans)] if t]
    ends = [t for t in [_when(doc.get("endTime")), *(_when(s.get("endTime")) for s in spans)] if t]
    origin = min(starts) if starts else None
    extent = (max([*ends, *starts]) - origin).total_seconds() if origin else 0.0
    scale = extent if extent > 0 else 1.0

    def geometry(item: Mapping[str, Any]) -> tuple[float | None, float | None]:
        begin, end = _when(item.get("startTime")), _when(item.get("endTime"))
        if origin is None or begin is None:
            return None, None
        finish = end or begin
        left = (begin - origin).total_seconds() / scale * 100
        width = (finish - begin).total_seconds() / scale * 100
        return min(max(left, 0.0), 100.0), min(max(width, 0.0), 100.0 - min(left, 100.0))

    rows = [Row(doc, -1, *geometry(doc), anchor="trace")]
    index = {id(s): i for i, s in enumerate(spans)}
    for depth, span in _depth_first(spans):
        rows.append(Row(span, depth, *geometry(span), anchor=f"span-{index[id(span)]}"))
    return rows, extent


def _depth_first(spans: list[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    """Spans nested under their parents; a span whose parent is unknown is top-level."""
    ids = {s.get("id") for s in spans}
    children: dict[Any, list[Mapping[str, Any]]] = {}
    for span in spans:
        parent = span.get("parentId")
        # parentId is stored as sent: anything but a known span id is "no parent".
        known = isinstance(parent, str) and parent in ids and parent != span.get("id")
        key = parent if known else None
        children.setdefault(key, []).append(span)

    def order(span: Mapping[str, Any]) -> str:
        value = span.get("startTime")
        return value if isinstance(value, str) else ""

    out: list[tuple[int, Mapping[str, Any]]] = []
    seen: set[int] = set()
    # An explicit stack: deep nesting cannot hit the recursion limit.
    stack = [(0, s) for s in sorted(children.get(None, []), key=order, reverse=True)]
    while stack:
        depth, span = stack.pop()
        if id(span) in seen:
            continue
        seen.add(id(span))
        out.append((depth, span))
        kids = children.get(span.get("id"), []) if span.get("id") is not None else []
        stack += [(depth + 1, k) for k in sorted(kids, key=order, reverse=True)]
    # Spans caught in a parent cycle were never reached from the top: show them flat.
    out += [(0, s) for s in spans if id(s) not in seen]
    return out
