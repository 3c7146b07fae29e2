"""The service benchmark's section of ``benchmarks/RESULTS.md`` and its chart."""

from __future__ import annotations

import os
import statistics
from importlib import metadata
from pathlib import Path
from typing import Any

START = "<!-- service benchmark: start (python -m benchmarks.service.run rewrites this) -->"
END = "<!-- service benchmark: end -->"
SHORT = {
    "tracing": "this SDK",
    "tracing@before": "this SDK before #12",
    "tracing-middleware": "this SDK, middleware only",
    "otel": "OpenTelemetry",
    "sentry": "Sentry",
}
TARGETS = {"rps": (">=", 0.85), "p99_ms": ("<=", 1.3)}
PACKAGES = [
    "aiotracing",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-fastapi",
    "sentry-sdk",
]


def _ratios(saved: dict[str, Any], variant: str, key: str) -> list[float]:
    """Per round: the variant over the mean of the untraced runs just before and after it."""
    out = []
    for one in saved["rounds"]:
        if variant in one and "baseline" in one[variant]:
            out.append(one[variant][key] / one[variant]["baseline"][key])
    return out


def _median(saved: dict[str, Any], variant: str, key: str) -> float | None:
    values = [one[variant][key] for one in saved["rounds"] if variant in one]
    return statistics.median(values) if values else None


def _cell(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def _delivered(saved: dict[str, Any], variant: str) -> str:
    runs = [one[variant] for one in saved["rounds"] if variant in one]
    if variant == "none" or not runs:
        return "-"
    if variant.startswith("tracing"):  # also tracing@before
        ok = all(r["sink_records"] >= r["requests"] for r in runs)
        return "every request's trace" if ok else "MISSING traces"
    return f"{statistics.median(r['sink_records'] for r in runs):,.0f} records"


def table(saved: dict[str, Any]) -> list[str]:
    lines = [
        "| variant | requests/s | p50 | p99 | requests/s vs none | p50 vs none "
        "| p99 vs none | at the sink |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for variant in saved["variants"]:
        rps, p50, p99 = (_median(saved, variant, k) for k in ("rps", "p50_ms", "p99_ms"))
        if rps is None or p50 is None or p99 is None:
            lines.append(f"| {saved['labels'][variant]} | failed | | | | | | |")
            continue
        lines.append(
            f"| {saved['labels'][variant]} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms "
            f"| {_cell(_ratios(saved, variant, 'rps'))} "
            f"| {_cell(_ratios(saved, variant, 'p50_ms'))} "
            f"| {_cell(_ratios(saved, variant, 'p99_ms'))} | {_delivered(saved, variant)} |"
        )
    return lines


def asgi_table(asgi: dict[str, Any] | None) -> list[str]:
    if not asgi:
        return []
    lines = [
        "",
        f"In-process, straight through ASGI (`python -m benchmarks.service.asgi`, "
        f"{asgi['rounds']} rounds of {asgi['requests_per_block']:,} sequential requests per "
        "variant, each block including the flush of what it recorded; CPU time of the process):",
        "",
        "| variant | CPU per request | added vs none (median, range) | added, best blocks |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, row in asgi.items():
        if isinstance(row, dict):
            lines.append(_asgi_row(name, row))
    return lines


def _asgi_row(name: str, row: dict[str, Any]) -> str:
    best = row.get("added_best_cpu_us")
    return (
        f"| {name} | {row['cpu_us_per_request']:.1f} us | {row['added_cpu_us']:+.1f} us "
        f"({row['added_cpu_us_min']:+.1f} to {row['added_cpu_us_max']:+.1f}) | "
        f"{'n/a' if best is None else f'{best:+.1f} us'} |"
    )


def _asgi_before(asgi: dict[str, Any] | None) -> list[str]:
    row = (asgi or {}).get("tracing")
    if not row:
        return []
    return [_asgi_row("tracing, the `--compare` checkout (its own run)", row)]


def _versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} not installed")
    return ", ".join(out)


def section(saved: dict[str, Any]) -> list[str]:
    from benchmarks.run import machine

    rps = _ratios(saved, "tracing", "rps")
    p99 = _ratios(saved, "tracing", "p99_ms")
    rps_met = bool(rps) and statistics.median(rps) >= TARGETS["rps"][1]
    p99_met = bool(p99) and statistics.median(p99) <= TARGETS["p99_ms"][1]
    return [
        START,
        "## Service benchmark: FastAPI under load",
        "",
        "`make bench-service` (also part of `make bench`): each variant of "
        "`benchmarks/service/app.py` served by uvicorn (one worker, uvloop + httptools) in its "
        f"own process, loaded by `wrk -t1 -c{saved['connections']} -d{saved['seconds']:g}s` on "
        "`GET /items/{id}` (two awaited functions) after a 1 s warm-up; "
        f"{len(saved['rounds'])} rounds; each traced run sits between two untraced runs and "
        "is compared with their mean (median of the rounds, and range). SIGTERM after each "
        "run: the "
        "lifespan delivers what is queued, and the sink counts what arrived.",
        "",
        f"Machine: {machine()}. Versions: {_versions()}.{_load(saved)}",
        "",
        *table(saved),
        *asgi_table(saved.get("asgi")),
        *_asgi_before(saved.get("asgi_before")),
        "",
        "| target | measured | met |",
        "| --- | ---: | --- |",
        f"| this SDK requests/s >= 0.85 of untraced | {_cell(rps)} | {_yes(rps_met)} |",
        f"| this SDK p99 <= 1.3x untraced | {_cell(p99)} | {_yes(p99_met)} |",
        *_asgi_target(saved.get("asgi")),
        "",
        "![service benchmark](service.png)",
        END,
    ]


def _load(saved: dict[str, Any]) -> str:
    load = saved.get("load")
    if not load:
        return ""
    return (
        f" Load average (1 min) during the run: {min(load):.1f}-{max(load):.1f} on "
        f"{os.cpu_count()} cores; a figure far above the core count means the ratios "
        "measure the other jobs as much as the SDK."
    )


def _yes(met: bool) -> str:
    return "yes" if met else "no"


def _asgi_target(asgi: dict[str, Any] | None) -> list[str]:
    row = (asgi or {}).get("tracing")
    if not row:
        return []
    met = "yes" if row["added_cpu_us"] <= 20 else "no"
    return [f"| added per request, ASGI driver, <= 20 us | {row['added_cpu_us']:.1f} us | {met} |"]


def write_section(path: Path, saved: dict[str, Any]) -> None:
    """Replace the service section of ``path`` (or append it)."""
    text = path.read_text() if path.exists() else ""
    new = "\n".join(section(saved)) + "\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + new + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + new
    path.write_text(text)


def write_chart(path: Path, saved: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v for v in saved["variants"] if v != "none"]
    labels = [SHORT.get(v, v) for v in variants]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, title, target in (
        (axes[0], "rps", "requests/s vs no tracing (higher is better)", 0.85),
        (axes[1], "p99_ms", "p99 latency vs no tracing (lower is better)", 1.3),
    ):
        values = [statistics.median(_ratios(saved, v, key) or [float("nan")]) for v in variants]
        bars = ax.barh(
            labels,
            values,
            color=["#2b7bba" if v.startswith("tracing") else "#999" for v in variants],
        )
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.axvline(target, color="#c33", linestyle="--", linewidth=0.8, label=f"target {target}")
        ax.bar_label(bars, fmt="%.2f", padding=3)
        ax.set_title(title, fontsize=10)
        ax.invert_yaxis()
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        "FastAPI + uvicorn, wrk -t1 -c32: ratios to the untraced runs around each", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
