"""The durable spool's cost and its replay rate, against the spool off in the same run.

    python -m benchmarks.spool [--rounds 5] [--n 150000] [--backlog 1000000] [--scale 1]
                               [--append FILE]

Each measurement is its own process (``drive_tracing``'s ``trace()+end()`` loop at 1 KB
traces against the loopback sink, the same workload as ``make bench``): spool off, then
``spool_fsync="interval"``, ``"always"`` and ``"never"``, in alternating rounds so machine
noise hits every mode alike. Reported: the ``trace()+end()`` median and end-to-end
traces/s (first trace to last delivered, ``flush()`` included), with their ratios to the
spool off of the same round (each round's too), the intervals between the spool writer's
groups while traces were being made, and the load average before and after. The default
bursts are long (150,000 traces, 3-6 s each): 30,000-trace rounds lasted under half a
second and their ratios moved by 0.1 from run to run. Then a backlog of ``--backlog``
orphaned traces (~1.1 KB each: 1 M is ~1.1 GB) is written in the spool's own format,
and a fresh process with that ``spool_dir`` replays it all to the sink: traces/s and peak
RSS.

``--scale K`` makes every trace's input and output K times longer (``--scale 8``: ~7.7 KB
of JSON a trace, the size of an LLM call with its prompt and answer): the spool's CRC and
its copies into the page cache grow with the bytes, where the encoder's cost barely does.

``--pin`` runs every driver on CPU 0 and the sink on the last CPU: the application on one
core with the backend elsewhere (as a one-process-per-core deployment), so the sink never
competes with the application for a core and the spool's threads share the event loop's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from tracing._spool_format import encode_record

from ._common import ROOT, SCALE_ENV, append_section, free_port, start_sink, texts

MODES = ["off", "interval", "always", "never"]
SEGMENT = 16 * 2**20


def _pin_driver() -> None:
    os.sched_setaffinity(0, {0})


def run_driver(
    sink: str, n: int, mode: str, spool_dir: str, pin: bool = False, scale: int = 1
) -> dict[str, Any]:
    out = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.drive_spool", "--sink", sink, "--n", str(n)),
            *("--variant", mode, "--spool-dir", spool_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
        preexec_fn=_pin_driver if pin else None,
        env={**os.environ, SCALE_ENV: str(scale)},
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if "error" in result:
        raise RuntimeError(f"{mode}: {result['error']}\n{out.stderr[-2000:]}")
    return result


def write_backlog(spool_dir: Path, count: int, scale: int = 1) -> int:
    """An orphaned part (free lock) of ``count`` traces in the spool's format."""
    text_in, text_out = texts(scale)
    part = spool_dir / "p-0000000000000001-00000000bench"
    part.mkdir(parents=True)
    (part / "lock").touch()
    number, chunk, size, total = 1, [], 0, 0
    for seq in range(1, count + 1):
        trace_id = f"{seq:032x}"
        payload = orjson.dumps(
            {
                "id": trace_id,
                "name": "backlog",
                "startTime": "2026-12-01T00:00:00.000000Z",
                "endTime": "2026-12-01T00:00:01.000000Z",
                "status": "ok",
                "input": text_in,
                "output": text_out,
            }
        )
        record = encode_record(seq, payload)
        chunk.append(record)
        size += len(record)
        if size >= SEGMENT or seq == count:
            (part / f"{number:08d}.seg").write_bytes(b"".join(chunk))
            total += size
            number, chunk, size = number + 1, [], 0
    return total


def measure(args: argparse.Namespace, sink: str, work: Path) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    load_before = os.getloadavg()
    for index in range(args.rounds):
        for mode in MODES:
            spool_dir = work / f"{mode}-{index}"
            result = run_driver(sink, args.n, mode, str(spool_dir), args.pin, args.scale)
            rounds[mode].append(result)
            shutil.rmtree(spool_dir, ignore_errors=True)
            print(mode, index, _brief(rounds[mode][-1]), file=sys.stderr)
    backlog_dir = work / "backlog"
    t0 = time.perf_counter()
    size = write_backlog(backlog_dir, args.backlog, args.scale)
    written_s = time.perf_counter() - t0
    replay = run_driver(sink, args.backlog, "replay", str(backlog_dir), args.pin, args.scale)
    print("replay", _brief(replay), file=sys.stderr)
    return {
        "rounds": rounds,
        "replay": replay,
        "backlog_bytes": size,
        "written_s": written_s,
        "load": [load_before, os.getloadavg()],
    }


def _brief(result: dict[str, Any]) -> str:
    median = result["enqueue_median_us"] or 0.0
    return (
        f"median {median:.2f} us, {result['throughput']:.0f}/s, "
        f"rss {result['peak_rss_mb']:.0f} MB, verified {result['verified']}"
    )


def report(data: dict[str, Any], args: argparse.Namespace) -> str:
    rounds = data["rounds"]
    off = rounds["off"]
    lines = [
        "",
        "## Durable spool (`python -m benchmarks.spool`, issue 9)",
        "",
        f"{args.rounds} rounds of {args.n:,} traces per mode, modes alternating within each "
        "round; ratios are to the spool off of the same round, then the median of the rounds."
        + (
            " Pinned (`--pin`): every driver on CPU 0, the sink on the last CPU."
            if args.pin
            else ""
        )
        + f" Traces of {_posted_kb(off):.1f} KB of JSON each as posted"
        + (f" (`--scale {args.scale}`)." if args.scale != 1 else "."),
        "",
        "| mode | trace()+end() median | vs off | end-to-end traces/s | vs off "
        "| CPU us/trace | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode in MODES:
        runs = rounds[mode]
        med = [r["enqueue_median_us"] for r in runs]
        tput = [r["throughput"] for r in runs]
        med_ratio = statistics.median(
            r["enqueue_median_us"] / o["enqueue_median_us"] for r, o in zip(runs, off, strict=True)
        )
        tput_ratio = statistics.median(
            r["throughput"] / o["throughput"] for r, o in zip(runs, off, strict=True)
        )
        lines.append(
            f"| {mode} | {statistics.median(med):.2f} us | {med_ratio:.2f} "
            f"| {statistics.median(tput):,.0f} | {tput_ratio:.2f} "
            f"| {statistics.median(r['cpu_us_per_trace'] for r in runs):.1f} "
            f"| {statistics.median(r['peak_rss_mb'] for r in runs):.0f} |"
        )
    lines += ["", "Per round, end-to-end traces/s against the spool off of the same round:", ""]
    for mode in MODES[1:]:
        ratios = [r["throughput"] / o["throughput"] for r, o in zip(rounds[mode], off, strict=True)]
        lines.append(f"- {mode}: " + ", ".join(f"{x:.2f}" for x in ratios))
    lines += [
        "",
        "Intervals between the writer's groups while traces were made (per round: median / "
        "99th percentile / largest, ms):",
        "",
    ]
    for mode in MODES[1:]:
        gaps = [r.get("group_gap_ms") or {} for r in rounds[mode]]
        lines.append(
            f"- {mode}: "
            + ", ".join(
                f"{_ms(g.get('p50'))} / {_ms(g.get('p99'))} / {_ms(g.get('max'))}" for g in gaps
            )
        )
    before, after = data["load"]
    lines += [
        "",
        f"Load average (1, 5, 15 min) before: {before[0]:.2f}, {before[1]:.2f}, {before[2]:.2f}; "
        f"after: {after[0]:.2f}, {after[1]:.2f}, {after[2]:.2f}.",
    ]
    replay = data["replay"]
    lines += [
        "",
        f"Replay of an orphaned backlog of {args.backlog:,} traces "
        f"({data['backlog_bytes'] / 2**30:.2f} GiB on disk) by a fresh process: "
        f"{replay['throughput']:,.0f} traces/s ({replay['seconds']:.1f} s), peak RSS "
        f"{replay['peak_rss_mb']:.0f} MB, every trace counted by the sink: {replay['verified']}.",
        "",
    ]
    return "\n".join(lines)


def _posted_kb(runs: list[dict[str, Any]]) -> float:
    """The JSON posted per trace, as the sink counted it (the body's envelope included)."""
    sizes = [float(r["sink_bytes"]) / max(int(r["sink_records"]), 1) for r in runs]
    return statistics.median(sizes) / 1024


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=150_000)
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--append", type=Path)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes")
    parser.add_argument("--pin", action="store_true", help="drivers on CPU 0, the sink apart")
    parser.add_argument("--scale", type=int, default=1, help="input and output K times longer")
    args = parser.parse_args()
    if args.scale < 1:
        parser.error("--scale must be at least 1")
    if args.quick:
        args.rounds, args.n, args.backlog = 1, 5_000, 20_000
    port = free_port()
    sink = start_sink(port, 3600)  # long enough for a 1 M-trace replay
    if args.pin:
        os.sched_setaffinity(sink.pid, {max(os.sched_getaffinity(0))})
    work = Path(tempfile.mkdtemp(prefix="spool-bench-"))
    try:
        data = measure(args, f"http://127.0.0.1:{port}", work)
    finally:
        sink.kill()
        sink.wait()
        shutil.rmtree(work, ignore_errors=True)
    append_section(args.append, report(data, args))
    os.makedirs(ROOT / "benchmarks" / "_out", exist_ok=True)
    (ROOT / "benchmarks" / "_out" / "spool.json").write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
