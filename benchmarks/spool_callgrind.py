"""The durable spool's cost in instructions per trace, counted by callgrind (deterministic).

    python -m benchmarks.spool_callgrind [--small 20000] [--large 40000] [--modes off interval]

The timed end-to-end ratio of ``benchmarks/spool.py`` moves by 0.1-0.3 from round to round
on a shared machine (the same code measured 0.51-0.83 of the spool off in one run), more
than most changes to the spool move it. This counts instead: each mode's driver
(``drive_spool``, the same ``trace()+end()`` loop at ~1.4 KB traces against the loopback
sink, the sink outside valgrind) runs under ``valgrind --tool=callgrind`` twice, with
``--small`` and with ``--large`` traces, and the difference of the two totals divided by
the difference of the counts is the instructions one more trace costs, in every thread of
the process: start-up, imports and shutdown cancel out. The figure per mode is that
marginal count, and its ratio to the spool off's.

Instructions are not time: the spool's work is memory-heavy (each trace's JSON is copied
into its record and into the POST, and read by a CRC), and callgrind serialises the
threads, so the writer thread encodes more of the traces than it does natively (the same
work in another thread). Use this to compare two versions of the code, and the timed
benchmark for what a user sees. Needs ``valgrind`` (Debian's package).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ._common import ROOT, append_section, free_port, start_sink

_TOTAL = re.compile(rb"^summary: (\d+)$", re.MULTILINE)


def count(n: int, mode: str, work: Path) -> int:
    """Instructions of one driver process (all its threads) making ``n`` traces, against
    a sink of its own (the driver checks the sink's count)."""
    out = work / f"cg-{mode}-{n}.out"
    spool_dir = work / f"spool-{mode}-{n}"
    port = free_port()
    sink = start_sink(port, 7200)
    try:
        run = subprocess.run(
            [
                *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"),
                *(sys.executable, "-m", "benchmarks.drive_spool"),
                *("--sink", f"http://127.0.0.1:{port}", "--n", str(n)),
                *("--variant", mode, "--spool-dir", str(spool_dir)),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict and set orders
        )
    finally:
        sink.kill()
        sink.wait()
    last = run.stdout.strip().splitlines()[-1:] or [""]
    if run.returncode != 0 or '"verified": true' not in last[0]:
        raise RuntimeError(f"{mode} n={n}: {last[0] or run.stderr[-2000:]}")
    found = _TOTAL.search(out.read_bytes())
    if found is None:
        raise RuntimeError(f"{mode} n={n}: no total in {out}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=40_000)
    parser.add_argument("--modes", nargs="+", default=["off", "interval"])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--append", type=Path)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if not 0 < args.small < args.large:
        raise SystemExit("--small must be positive and less than --large")
    modes = ["off", *(m for m in args.modes if m != "off")]
    work = Path(tempfile.mkdtemp(prefix="spool-cg-"))
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            jobs = {
                (mode, n): pool.submit(count, n, mode, work)
                for mode in modes
                for n in (args.small, args.large)
            }
            totals = {key: job.result() for key, job in jobs.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per = {
        m: (totals[m, args.large] - totals[m, args.small]) / (args.large - args.small)
        for m in modes
    }
    lines = [
        "## Durable spool in instructions (`python -m benchmarks.spool_callgrind`, issue 9)",
        "",
        f"Instructions per trace, all threads, callgrind: each mode's driver run with "
        f"{args.small:,} and {args.large:,} traces, the difference of the totals over the "
        "difference of the counts.",
        "",
        "| mode | instructions per trace | added by the spool | off / mode |",
        "| --- | ---: | ---: | ---: |",
    ]
    for mode in modes:
        lines.append(
            f"| {mode} | {per[mode]:,.0f} | {per[mode] - per['off']:,.0f} "
            f"| {per['off'] / per[mode]:.3f} |"
        )
    append_section(args.append, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
