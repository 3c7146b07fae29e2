"""``RESULTS.md`` and the bar chart, from the drivers' results (see ``run.py``)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.run import Driver


DRAINS = ("drain", "floor-depth")  # queue-then-drain runs: reported apart


def _ok(driver: Driver) -> list[dict[str, Any]]:
    return [r for r in driver.results if "error" not in r]


def _med(driver: Driver, key: str) -> float | None:
    values = [r[key] for r in _ok(driver) if r.get(key) is not None]
    return statistics.median(values) if values else None


def _max(driver: Driver, key: str) -> float | None:
    values = [r[key] for r in _ok(driver) if r.get(key) is not None]
    return max(values) if values else None


def _fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _by_key(drivers: list[Driver]) -> dict[str, Driver]:
    return {d.key: d for d in drivers}


def _fastest_peer(drivers: list[Driver]) -> Driver | None:
    peers = [d for d in drivers if d.kind == "peer" and _med(d, "throughput")]
    return max(peers, key=lambda d: _med(d, "throughput") or 0.0, default=None)


def _same_round_ratio(ours: Driver, other: Driver) -> list[float]:
    """ours / other throughput, round by round (the same run, the same minutes)."""
    theirs = {r["round"]: r["throughput"] for r in _ok(other)}
    return [
        r["throughput"] / theirs[r["round"]]
        for r in _ok(ours)
        if r["round"] in theirs and theirs[r["round"]]
    ]


def table(drivers: list[Driver]) -> list[str]:
    fastest = _fastest_peer(drivers)
    floor = _by_key(drivers).get("floor")
    peer_tp = _med(fastest, "throughput") if fastest else None
    floor_tp = _med(floor, "throughput") if floor else None
    rows = [
        "| driver | N | traces/s median (min-max) | x fastest peer | x floor "
        "| enqueue median / p99 (us) | host CPU us/trace | peak RSS MB | max loop lag ms "
        "| verified by sink |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for d in drivers:
        if d.key in DRAINS:
            continue
        ok = _ok(d)
        if not ok:
            errors = "; ".join(r.get("error", "?") for r in d.results) or "not run"
            rows.append(f"| {d.label} | - | failed: {errors} | | | | | | | |")
            continue
        tps = [r["throughput"] for r in ok]
        tp = statistics.median(tps)
        lag = _max(d, "max_loop_lag_ms")
        lag_text = _fmt(lag, ".1f") + ("" if ok[0].get("asyncio_native") else " (threads)")
        verified = sum(bool(r.get("verified")) for r in ok)
        rows.append(
            f"| {d.label} | {ok[0]['n']:,} | {tp:,.0f} ({min(tps):,.0f}-{max(tps):,.0f}) "
            f"| {_fmt(tp / peer_tp if peer_tp else None, '.2f')} "
            f"| {_fmt(tp / floor_tp if floor_tp else None, '.2f')} "
            f"| {_fmt(_med(d, 'enqueue_median_us'), '.2f')} / "
            f"{_fmt(_med(d, 'enqueue_p99_us'), '.1f')} "
            f"| {_fmt(_med(d, 'cpu_us_per_trace'), '.1f')} "
            f"| {_fmt(_med(d, 'peak_rss_mb'), '.0f')} | {lag_text} "
            f"| {verified}/{len(d.results)} runs |"
        )
    return rows


def targets(drivers: list[Driver]) -> list[str]:
    by = _by_key(drivers)
    ours, floor, drain = by.get("tracing"), by.get("floor"), by.get("drain")
    fastest = _fastest_peer(drivers)
    if ours is None or not _ok(ours):
        return ["(this SDK's driver did not run)"]
    tp = _med(ours, "throughput") or 0.0
    rows = ["| target | measured | met |", "| --- | --- | --- |"]

    def row(name: str, value: str, met: bool | None) -> None:
        rows.append(f"| {name} | {value} | {'n/a' if met is None else ('yes' if met else 'NO')} |")

    enqueue = _med(ours, "enqueue_median_us")
    row(
        "trace()+end() median <= 5 us",
        _fmt(enqueue, ".2f", " us"),
        enqueue is not None and enqueue <= 5,
    )
    row(">= 80,000 traces/s end to end", f"{tp:,.0f}/s", tp >= 80_000)
    if fastest is not None:
        ratios = _same_round_ratio(ours, fastest)
        r = statistics.median(ratios) if ratios else None
        row(
            f">= 10x the fastest peer ({fastest.label})",
            _fmt(r, ".1f", "x") + f" (per round: {', '.join(f'{x:.1f}' for x in ratios)})",
            r is not None and r >= 10,
        )
    if floor is not None and _ok(floor):
        ratios = _same_round_ratio(ours, floor)
        r = statistics.median(ratios) if ratios else None
        row(
            ">= 75% of the Queue+orjson+aiohttp floor, same run",
            _fmt(None if r is None else r * 100, ".0f", "%")
            + f" (per round: {', '.join(f'{x * 100:.0f}%' for x in ratios)})",
            r is not None and r >= 0.75,
        )
        depth = by.get("floor-depth")
        ours_q = _med(drain, "queued_mb") if drain is not None else None
        floor_q = _med(depth, "queued_mb") if depth is not None else None
        if ours_q and floor_q:
            row(
                "memory at the same queue depth (10,000 queued) <= 1.5x the floor's",
                f"{ours_q:.1f} MB vs {floor_q:.1f} MB ({ours_q / floor_q:.2f}x)",
                ours_q <= 1.5 * floor_q,
            )
        ours_rss, floor_rss = _med(ours, "peak_rss_mb"), _med(floor, "peak_rss_mb")
        if ours_rss and floor_rss:
            row(
                "peak RSS of the full run <= 1.5x the floor's (not the same queue depth)",
                f"{ours_rss:.0f} MB vs {floor_rss:.0f} MB ({ours_rss / floor_rss:.2f}x)",
                ours_rss <= 1.5 * floor_rss,
            )
    cpu = _med(ours, "cpu_us_per_trace")
    row("<= 15 us host CPU per trace", _fmt(cpu, ".1f", " us"), cpu is not None and cpu <= 15)
    lags = [_max(d, "max_loop_lag_ms") for d in (ours, by.get("tracing-gzip")) if d]
    lag = max((x for x in lags if x is not None), default=None)
    row(
        "max event-loop lag <= 5 ms (plain and gzip, every round)",
        _fmt(lag, ".1f", " ms"),
        lag is not None and lag <= 5,
    )
    if drain is not None and _ok(drain):
        seconds = _med(drain, "seconds")
        row(
            "shutdown drain of 10,000 queued <= 0.3 s",
            _fmt(seconds, ".3f", " s"),
            (seconds or 9) <= 0.3,
        )
    return rows


def otlp_targets(drivers: list[Driver]) -> list[str]:
    """Issue 10: this SDK with protocol="otlp" against OpenTelemetry's SDK, same sink."""
    by = _by_key(drivers)
    ours, otel = by.get("tracing-otlp"), by.get("otel")
    if ours is None or otel is None or not _ok(ours) or not _ok(otel):
        return ["(the OTLP drivers did not both run)"]
    rows = ["| target | measured | met |", "| --- | --- | --- |"]
    ratios = _same_round_ratio(ours, otel)
    r = statistics.median(ratios) if ratios else None
    rows.append(
        f"| >= 5x OpenTelemetry's traces/s | {_fmt(r, '.1f', 'x')} (per round: "
        f"{', '.join(f'{x:.1f}' for x in ratios)}; {_med(ours, 'throughput'):,.0f} vs "
        f"{_med(otel, 'throughput'):,.0f}/s) | {'yes' if r is not None and r >= 5 else 'NO'} |"
    )
    theirs = {x["round"]: x["cpu_us_per_trace"] for x in _ok(otel)}
    shares = [
        x["cpu_us_per_trace"] / theirs[x["round"]] for x in _ok(ours) if theirs.get(x["round"])
    ]
    share = statistics.median(shares) if shares else None
    rows.append(
        f"| <= 1/5 of OpenTelemetry's host CPU per trace | {_fmt(share, '.2f', 'x')} (per "
        f"round: {', '.join(f'{x:.2f}' for x in shares)}; "
        f"{_fmt(_med(ours, 'cpu_us_per_trace'), '.1f')} vs "
        f"{_fmt(_med(otel, 'cpu_us_per_trace'), '.1f')} us) "
        f"| {'yes' if share is not None and share <= 0.2 else 'NO'} |"
    )
    return rows


def write_report(path: Path, drivers: list[Driver], *, n: int, rounds: int, seconds: float) -> None:
    from benchmarks.run import machine, versions

    by = _by_key(drivers)
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `make bench` (`python -m benchmarks.run`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, in {seconds / 60:.1f} minutes.",
        "",
        f"- Machine: {machine()}. Shared and noisy: read ratios measured in the same run, "
        "not absolute numbers.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        f"- N = {n:,} records of ~1 KB per driver (Infinium: fewer, see below), "
        f"{rounds} round(s), drivers interleaved (order rotated each round); medians across "
        "rounds, min-max in brackets.",
        "- Each driver is its own process; the sink is another (loopback, 127.0.0.1).",
        "",
        "## Throughput, enqueue cost, CPU, memory, loop lag",
        "",
        *table(drivers),
        "",
        "Ratios are of median throughputs; the targets below use round-by-round ratios.",
        "",
        "## Targets (issue 5)",
        "",
        *targets(drivers),
        "",
        "## Targets (issue 10): OTLP mode against OpenTelemetry's SDK",
        "",
        "Both send OTLP/HTTP protobuf to the sink's `/v1/traces`, which parses every body "
        "with `opentelemetry-proto` and counts spans; both run back to back in each round.",
        "",
        *otlp_targets(drivers),
        "",
        "## Settings changed from defaults",
        "",
        *[f"- {d.label}: endpoint/host -> the sink; {d.settings}" for d in drivers],
        "",
    ]
    drain = by.get("drain")
    if drain is not None and _ok(drain):
        ok = _ok(drain)
        times = ", ".join(f"{r['seconds']:.3f}" for r in ok)
        lines += [
            "## Shutdown drain",
            "",
            f"`await tracer.shutdown()` with {ok[0].get('queued_at_shutdown', 0):,} traces "
            f"queued and none sent yet: {times} s "
            f"(median {_med(drain, 'seconds'):.3f} s); sent "
            f"{', '.join(str(r.get('sdk_sent')) for r in ok)}, verified by the sink: "
            f"{sum(bool(r.get('verified')) for r in ok)}/{len(ok)}.",
            "",
        ]
    depth = by.get("floor-depth")
    if drain is not None and _ok(drain) and depth is not None and _ok(depth):
        lines += [
            f"Memory held by 10,000 queued traces (current RSS before/after queueing): this "
            f"SDK {_med(drain, 'queued_mb'):.1f} MB, the floor's plain dicts in an "
            f"`asyncio.Queue` {_med(depth, 'queued_mb'):.1f} MB. The floor drains its "
            f"10,000 in {_med(depth, 'seconds'):.3f} s (median).",
            "",
        ]
    sink_rows = []  # the sink's CPU seconds per record it counted, JSON batch routes
    for d in drivers:
        if d.module in ("drive_tracing", "drive_floor_queue", "drive_floor_batches"):
            sink_rows += [r["sink_cpu_s"] / r["sink_records"] for r in _ok(d) if r["sink_records"]]
    worst = max(sink_rows, default=0.0)
    batches = by.get("floor-batches")
    lines += [
        "## The sink is not the bottleneck",
        "",
        "The sink decodes every body to count records (JSON, or protobuf for OTLP) and "
        "reports its own CPU time. At its most expensive it spent "
        f"{worst * 1e6:.1f} us of CPU per trace (from reset to the end of a driver's run), "
        f"so one core of it can take about {1 / worst if worst else 0:,.0f} traces/s. "
        + (
            f"The pre-serialised-batches floor pushed {_med(batches, 'throughput'):,.0f} "
            "traces/s through the same sink, the headroom above every other driver."
            if batches is not None and _ok(batches)
            else ""
        ),
        "",
        "## Notes",
        "",
        "- Enqueue cost is timed per call with `perf_counter_ns` around the library's "
        "record-and-enqueue call(s); end to end runs from the first call until the library "
        "says everything was delivered (`flush()`, `force_flush()`, ...), then the sink's "
        "count must equal N (`verified`).",
        "- Loop lag: the largest delay of a 1 ms `asyncio.sleep` ticker over the whole "
        "run, flush included. Thread-based peers run inside the same asyncio program; "
        "their blocking `flush()` runs in `asyncio.to_thread`.",
        "- Infinium posts one request per record and has no queue, so its N is smaller and "
        "there is no per-call enqueue cost; its default 10 requests/s client-side limit was "
        "turned off.",
        "- Host CPU is `time.process_time()` of the driver process (all its threads) over "
        "the timed window, divided by N.",
        "- Where the time goes, what was tried, and why the unmet targets are unmet: "
        '`benchmarks/README.md`, section "Where the time goes".',
        "",
    ]
    path.write_text("\n".join(lines))


def write_chart(path: Path, drivers: list[Driver]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    shown = [d for d in drivers if d.key not in DRAINS and _ok(d)]
    labels = [d.label for d in shown]
    tps = [_med(d, "throughput") or 0.0 for d in shown]
    low = [t - min(r["throughput"] for r in _ok(d)) for t, d in zip(tps, shown, strict=True)]
    high = [max(r["throughput"] for r in _ok(d)) - t for t, d in zip(tps, shown, strict=True)]
    colors = {"sdk": "#1f77b4", "extra": "#6baed6", "peer": "#ff7f0e", "floor": "#7f7f7f"}
    bar_colors = [colors[d.kind] for d in shown]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 0.55 * len(shown) + 2.2))
    y = list(range(len(shown)))
    ax1.barh(y, tps, xerr=[low, high], color=bar_colors)
    ax1.set_xscale("log")
    ax1.set_xlim(right=max(tps) * 4)  # room for the labels
    ax1.set_yticks(y, labels)
    ax1.invert_yaxis()
    ax1.set_xlabel("end-to-end traces/s (log scale; median, min-max)")
    for yi, t, hi in zip(y, tps, high, strict=True):
        ax1.text((t + hi) * 1.15, yi, f"{t:,.0f}", va="center", fontsize=8)
    enq = [_med(d, "enqueue_median_us") for d in shown]
    ax2.barh(y, [e or 0 for e in enq], color=bar_colors)
    ax2.set_xscale("log")
    ax2.set_xlim(right=max((e or 1.0) for e in enq) * 2.5)
    ax2.set_yticks(y, [""] * len(y))
    ax2.invert_yaxis()
    ax2.set_xlabel("enqueue-path cost per call, median us (log scale)")
    ax2.xaxis.set_minor_formatter(NullFormatter())
    ax2.xaxis.set_major_formatter(ScalarFormatter())
    for yi, e in zip(y, enq, strict=True):
        if e is None:  # no per-record enqueue call to time
            ax2.text(0.02, yi, "n/a", va="center", fontsize=8, transform=ax2.get_yaxis_transform())
        else:
            ax2.text(e * 1.1, yi, f"{e:.1f}", va="center", fontsize=8)
    fig.suptitle("1 KB traces over loopback: this SDK (blue), peers (orange), floors (grey)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
