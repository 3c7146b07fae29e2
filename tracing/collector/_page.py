"""The trace viewer: server-rendered HTML, no scripts, no assets from anywhere.

Everything shown is user data, so every value goes through ``_e`` (``html.escape``)
or into a URL through ``quote``; the only unescaped text is the markup written here.
Pages carry a Content-Security-Policy without ``script-src`` as a second line of defence.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from tracing._wire import parse_time

from ._storage import ListQuery
from ._timeline import Row, tick_labels, timeline

__all__ = ["render_error", "render_list", "render_signin", "render_trace"]

_CSS = """
:root{--fg:#1f2328;--mute:#656d76;--line:#d0d7de;--bg:#f6f8fa;--ok:#1a7f37;--err:#cf222e;
--bar:#0969da;--errbg:#ffebe9}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg)}
header{display:flex;align-items:center;gap:1rem;padding:.6rem 1.2rem;background:#24292f;
color:#fff}
header a{color:#fff;text-decoration:none;font-weight:600}
header .grow{flex:1}
header form{margin:0}
header button{background:none;border:1px solid #57606a;color:#fff;border-radius:6px;
padding:.15rem .6rem;cursor:pointer}
main{padding:1rem 1.2rem;max-width:1400px;margin:0 auto}
h1{font-size:1.3rem;margin:.2rem 0 .8rem;word-break:break-all}
h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
a{color:var(--bar)}
.filter{display:flex;gap:.5rem;align-items:center;margin-bottom:.8rem}
.filter input{padding:.3rem .5rem;border:1px solid var(--line);border-radius:6px;width:22rem}
.filter button,.signin button{padding:.3rem .8rem;border:1px solid var(--line);
border-radius:6px;background:var(--bg);cursor:pointer}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);
vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{word-break:break-all}
tr.error td{background:var(--errbg)}
tr.error td:first-child{box-shadow:inset 4px 0 var(--err)}
.badge{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:.8rem;
font-weight:600;border:1px solid}
.badge.ok{color:var(--ok);border-color:var(--ok)}
.badge.error{color:#fff;background:var(--err);border-color:var(--err)}
.mute{color:var(--mute)}
.pager{display:flex;gap:1rem;align-items:center;margin-top:.8rem}
.summary{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
.summary dt{color:var(--mute)}
.summary dd{margin:0;word-break:break-all}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:.5rem;
margin:.2rem 0;white-space:pre-wrap;word-break:break-all;max-height:18rem;overflow:auto}
pre.err{background:var(--errbg);border-color:var(--err)}
.timeline{border:1px solid var(--line);border-radius:6px;overflow:hidden}
.tl-row{display:grid;grid-template-columns:minmax(12rem,28%) 1fr 6rem;align-items:center;
border-bottom:1px solid var(--line);min-height:1.9rem}
.tl-row:last-child{border-bottom:none}
.tl-row.head{background:var(--bg);font-size:.8rem;color:var(--mute)}
.tl-label{padding:.15rem .5rem;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.tl-label a{color:var(--fg);text-decoration:none}
.tl-track{position:relative;height:1.9rem;border-left:1px solid var(--line);
border-right:1px solid var(--line)}
.tl-bar{position:absolute;top:.45rem;height:1rem;min-width:2px;border-radius:3px;
background:var(--bar)}
.tl-bar.root{background:#8250df}
.tl-bar.error{background:var(--err)}
.tl-dur{padding:0 .5rem;text-align:right;font-variant-numeric:tabular-nums;
color:var(--mute);font-size:.85rem}
.ticks{position:relative;height:1.2rem}
.ticks span{position:absolute;transform:translateX(-50%);white-space:nowrap}
.ticks span:first-child{transform:none}
.ticks span:last-child{transform:translateX(-100%)}
.tl-row.error .tl-label a{color:var(--err);font-weight:600}
.usage{font-size:.8rem;color:var(--mute);margin-left:.4rem}
.span{border:1px solid var(--line);border-radius:6px;padding:.5rem .8rem;margin:.5rem 0}
.span.error{border-color:var(--err)}
.span h3{font-size:.95rem;margin:0 0 .3rem}
.signin{max-width:24rem;margin:4rem auto;display:grid;gap:.6rem}
.signin input{padding:.4rem .5rem;border:1px solid var(--line);border-radius:6px}
.flash{color:var(--err)}
"""

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _count(value: Any) -> int:
    """A count from stored data, 0 when it is not a plain non-negative integer (only token
    counts are validated on ingest; other fields are stored as sent)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _layout(title: str, body: str, *, signed_in: bool) -> str:
    signout = (
        '<form method="post" action="/signout"><button type="submit">Sign out</button></form>'
        if signed_in
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)} · tracing collector</title><style>{_CSS}</style></head><body>"
        f'<header><a href="/">tracing collector</a><span class="grow"></span>{signout}</header>'
        f"<main>{body}</main></body></html>"
    )


def trace_url(trace_id: str) -> str:
    return "/traces/" + quote(trace_id, safe="")


def format_when(value: str | None) -> str:
    """``2026-11-22T03:01:38.123456Z`` as ``2026-11-22 03:01:38.123 UTC``."""
    if not value:
        return "—"
    try:
        when = parse_time(value)
    except ValueError:
        return value
    return when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d} UTC"


def format_duration(seconds: float | None) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms" if seconds < 0.01 else f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _status(status: Any) -> str:
    kind = "error" if status == "error" else "ok"
    return f'<span class="badge {kind}">{_e(kind)}</span>'


def render_list(
    items: Sequence[Mapping[str, Any]],
    *,
    query: ListQuery,
    total: int,
    next_cursor: str | None,
    prev_cursor: str | None,
    names: Sequence[str],
    signed_in: bool,
    page_size: int = 50,
) -> str:
    """The trace list: newest first, filterable by name and status, paged by cursor."""
    name = query.name
    options = "".join(f'<option value="{_e(n)}">' for n in names)
    statuses = "".join(
        f'<option value="{value}"{" selected" if query.status == (value or None) else ""}>'
        f"{label}</option>"
        for value, label in (("", "any"), ("ok", "ok"), ("error", "error"))
    )
    form = (
        '<form class="filter" method="get" action="/">'
        '<label for="name">Name</label>'
        f'<input id="name" name="name" list="names" value="{_e(name or "")}" '
        'placeholder="exact trace name" autocomplete="off">'
        f'<datalist id="names">{options}</datalist>'
        f'<label for="status">Status</label><select id="status" name="status">{statuses}</select>'
        + (
            f'<input type="hidden" name="limit" value="{query.limit}">'
            if query.limit != page_size
            else ""
        )
        + '<button type="submit">Filter</button>'
        + ('<a href="/">Clear</a>' if name or query.status else "")
        + "</form>"
    )
    rows = "".join(_list_row(item) for item in items)
    if not items:
        rows = '<tr><td colspan="6" class="mute">No traces yet.</td></tr>'
    table = (
        '<table id="traces"><thead><tr><th>Name</th><th>Started</th>'
        '<th class="num">Duration</th><th>Status</th><th class="num">Tokens</th>'
        f'<th class="num">Spans</th></tr></thead><tbody>{rows}</tbody></table>'
    )
    heading = f'<h1>Traces <span class="mute">({total:,})</span></h1>'
    pager = _pager(query, len(items), total, next_cursor, prev_cursor, page_size)
    return _layout("Traces", heading + form + table + pager, signed_in=signed_in)


def _list_row(item: Mapping[str, Any]) -> str:
    status = item.get("status")
    css = ' class="error"' if status == "error" else ""
    error = item.get("error")
    error_line = (
        f'<div class="mute">{_e(str(error)[:300])}</div>' if status == "error" and error else ""
    )
    return (
        f"<tr{css}>"
        f'<td class="name"><a href="{_e(trace_url(str(item["id"])))}">{_e(item.get("name"))}</a>'
        f"{error_line}</td>"
        f"<td>{_e(format_when(item.get('startTime')))}</td>"
        f'<td class="num">{_e(format_duration(item.get("duration")))}</td>'
        f"<td>{_status(status)}</td>"
        f'<td class="num">{_count(item.get("totalTokens")):,}</td>'
        f'<td class="num">{_count(item.get("spanCount")):,}</td>'
        "</tr>"
    )


def _pager(
    query: ListQuery,
    shown: int,
    total: int,
    next_cursor: str | None,
    prev_cursor: str | None,
    page_size: int,
) -> str:
    """« Newer and Older » links that carry a cursor, so every page is as fast."""

    def link(param: str, cursor: str, text: str, rel: str) -> str:
        params: dict[str, str | int] = {param: cursor}
        if query.name:
            params["name"] = query.name
        if query.status:
            params["status"] = query.status
        if query.limit != page_size:
            params["limit"] = query.limit
        return f'<a rel="{rel}" href="/?{_e(urlencode(params))}">{text}</a>'

    newer = link("before", prev_cursor, "« Newer", "prev") if prev_cursor else ""
    older = link("cursor", next_cursor, "Older »", "next") if next_cursor else ""
    count = f"{shown:,} of {total:,}" if total else ""
    return f'<nav class="pager">{newer}<span class="mute">{count}</span>{older}</nav>'


def render_trace(doc: Mapping[str, Any], *, signed_in: bool) -> str:
    """One trace: a summary, its spans as a timeline, then each span's details."""
    rows, total = timeline(doc)
    summary = _fields(doc, with_times=True)
    body = (
        f"<h1>{_e(doc.get('name'))} {_status(doc.get('status'))}</h1>"
        f'<p><a href="/">« All traces</a></p>{summary}'
        f"<h2>Timeline</h2>{_timeline(rows, total)}"
        f"<h2>Spans ({len(rows) - 1})</h2>"
        + ("".join(_span_detail(row) for row in rows[1:]) or '<p class="mute">No spans.</p>')
    )
    return _layout(str(doc.get("name")), body, signed_in=signed_in)


def _timeline(rows: Sequence[Row], total: float) -> str:
    ticks = "".join(
        f'<span style="left:{p}%">{_e(label)}</span>'
        for p, label in zip((0, 25, 50, 75, 100), tick_labels(total), strict=True)
    )
    head = (
        '<div class="tl-row head"><div class="tl-label">span</div>'
        f'<div class="ticks">{ticks}</div><div class="tl-dur">duration</div></div>'
    )
    body = "".join(_timeline_row(row) for row in rows)
    return f'<div class="timeline" id="timeline">{head}{body}</div>'


def _timeline_row(row: Row) -> str:
    item = row.item
    error = item.get("status") == "error"
    kinds = " ".join(k for k in ("root" if row.depth < 0 else "", "error" if error else "") if k)
    bar = ""
    if row.left is not None and row.width is not None:
        bar = (
            f'<div class="tl-bar {kinds}" data-span-id="{_e(item.get("id"))}" '
            f'title="{_e(item.get("name"))} · {_e(format_duration(item.get("duration")))}" '
            f'style="left:{row.left:.4f}%;width:{row.width:.4f}%"></div>'
        )
    indent = min(max(row.depth, 0), 24) * 1.1 + 0.5
    label = _e(item.get("name"))
    if row.depth >= 0:
        label = f'<a href="#{row.anchor}">{label}</a>'
    usage = item.get("llmUsage")
    if isinstance(usage, Mapping):
        tokens = _count(usage.get("promptTokens")) + _count(usage.get("completionTokens"))
        label += f'<span class="usage">{_e(usage.get("model") or "LLM")} · {tokens:,} tok</span>'
    return (
        f'<div class="tl-row{" error" if error else ""}">'
        f'<div class="tl-label" style="padding-left:{indent:.1f}rem">{label}</div>'
        f'<div class="tl-track">{bar}</div>'
        f'<div class="tl-dur">{_e(format_duration(item.get("duration")))}</div></div>'
    )


def _span_detail(row: Row) -> str:
    item = row.item
    error = item.get("status") == "error"
    return (
        f'<section class="span{" error" if error else ""}" id="{row.anchor}">'
        f"<h3>{_e(item.get('name'))} {_status(item.get('status'))} "
        f'<span class="mute">{_e(format_duration(item.get("duration")))}</span></h3>'
        f"{_fields(item, with_times=False)}</section>"
    )


def _fields(item: Mapping[str, Any], *, with_times: bool) -> str:
    parts: list[tuple[str, str]] = [("id", f"<code>{_e(item.get('id'))}</code>")]
    if with_times:
        parts += [
            ("started", _e(format_when(item.get("startTime")))),
            ("ended", _e(format_when(item.get("endTime")))),
            ("duration", _e(format_duration(item.get("duration")))),
        ]
    for key, label in (("description", "description"), ("inputSummary", "input summary")):
        if item.get(key):
            parts.append((label, _e(item[key])))
    if item.get("error"):
        parts.append(("error", f'<pre class="err">{_e(item["error"])}</pre>'))
    usage = _usage_text(item.get("llmUsage"))
    if usage:
        parts.append(("LLM usage", _e(usage)))
    for key in ("input", "output"):
        if item.get(key) is not None:
            parts.append((key, f"<pre>{_e(_pretty(item[key]))}</pre>"))
    if item.get("outputSummary"):
        parts.append(("output summary", _e(item["outputSummary"])))
    tags = item.get("tags")
    if tags:
        parts.append(("tags", _e(", ".join(map(str, tags)) if isinstance(tags, list) else tags)))
    if item.get("metadata"):
        parts.append(("metadata", f"<pre>{_e(_pretty(item['metadata']))}</pre>"))
    rows = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in parts)
    return f'<dl class="summary">{rows}</dl>'


def _usage_text(usage: Any) -> str:
    if not isinstance(usage, Mapping):
        return ""
    prompt = _count(usage.get("promptTokens"))
    completion = _count(usage.get("completionTokens"))
    model = " / ".join(str(v) for v in (usage.get("provider"), usage.get("model")) if v)
    calls = _count(usage.get("apiCallsCount"))
    return (
        f"{model} · {prompt + completion:,} tokens ({prompt:,} prompt + {completion:,} "
        f"completion) · {calls} call{'s' if calls != 1 else ''}"
    ).lstrip(" ·")


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except (TypeError, orjson.JSONEncodeError):
        return repr(value)


def render_signin(*, next_path: str, failed: bool) -> str:
    flash = '<p class="flash" role="alert">That key is not valid.</p>' if failed else ""
    body = (
        '<form class="signin" method="post" action="/signin">'
        "<h1>Sign in</h1>"
        '<p class="mute">This collector needs one of its keys to show traces.</p>'
        f"{flash}"
        '<label for="key">Key</label>'
        '<input id="key" name="key" type="password" autocomplete="current-password" required>'
        f'<input type="hidden" name="next" value="{_e(next_path)}">'
        '<button type="submit">Sign in</button></form>'
    )
    return _layout("Sign in", body, signed_in=False)


def render_error(status: int, message: str, *, signed_in: bool) -> str:
    body = f'<h1>{status}</h1><p>{_e(message)}</p><p><a href="/">« All traces</a></p>'
    return _layout(str(status), body, signed_in=signed_in)
