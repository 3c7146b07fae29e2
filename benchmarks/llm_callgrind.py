"""Instructions an instrumented LLM call adds, counted by callgrind (deterministic).

    python -m benchmarks.llm_callgrind [--pairs 60] [--sdk openai anthropic] [--stream]

For each client and setting (outside any trace: each instrumented call makes and queues
a trace of its own; inside a current trace), one run under ``valgrind --tool=callgrind``
makes real SDK calls through recorded answers (an ``httpx2.MockTransport``; no thread,
no socket): pairs of one plain and one instrumented call, the order alternating. Each
call is made from inside a C function nothing on the call's path calls, ``oct()`` for
the plain arm and ``bin()`` for the instrumented one (the same path into the call),
given to callgrind as ``--toggle-collect``: only the calls are counted, each arm apart,
in one process (two processes' SDK calls differ by a few thousand instructions: hashing
by address, allocation). The garbage collector is off during the pairs (which arm a
collection lands in would move a run by thousands of instructions) and the queue is
drained outside the counted calls. The figure per row is (instrumented arm's count -
plain arm's count) / pairs. The answers are recorded first, outside valgrind, from
``examples/_fake_llm.py``. ``--stream``: each call is a 200-chunk stream (OpenAI) or
200-event one (Anthropic), read to its end, instead of a complete answer; ~20 pairs are
enough there (each stream is ~160 million instructions).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The simulated caches: "default" (the figures of sessions 4-8: a 48 KB L1d and a 2 MB
# last level), or "zen3", this machine's (AMD EPYC, family 25: 32 KB L1i and L1d, a
# 512 KB L2 as the last level simulated; the 32 MB L3 it shares is not).
_CACHES = {
    "default": ["--I1=32768,8,64", "--D1=49152,12,64", "--LL=2097152,16,64"],
    "zen3": ["--I1=32768,8,64", "--D1=32768,8,64", "--LL=524288,8,64"],
}
_EVENTS = ("Ir", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw", "Bcm", "Bim")
# Valgrind runs uninstrumented (~5x, not ~100x slower) until the child has imported the
# SDKs and warmed up; it then starts instrumentation by callgrind's client request,
# through this two-line library (compiled with the system's cc and valgrind headers).
_START_C = """#include <valgrind/callgrind.h>
void start_instrumentation(void) { CALLGRIND_START_INSTRUMENTATION; }
"""


def _start_library(out_dir: Path) -> Path:
    source, library = out_dir / "start.c", out_dir / "start.so"
    source.write_text(_START_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", library, source], check=True)
    return library


class _Counted:
    """``oct(_Counted(call))``, ``bin(...)``: ``call()`` inside ``builtin_oct`` or
    ``builtin_bin`` (``__index__``)."""

    def __init__(self, call: Any) -> None:
        self.call = call

    def __index__(self) -> int:
        self.call()
        return 0


def _in_oct(call: Any) -> None:
    oct(_Counted(call))


def _in_bin(call: Any) -> None:
    bin(_Counted(call))


# arm -> how its calls are made, and the C function callgrind counts inside
_COUNTED = {"plain": (_in_oct, "builtin_oct"), "traced": (_in_bin, "builtin_bin")}


# answers key -> llm_overhead's case
_ANSWERS = {
    "openai": "openai chat",
    "anthropic": "anthropic messages",
    "openai-stream": "openai chat, stream of 200 chunks",
    "anthropic-stream": "anthropic messages, stream of 200 events",
}


def _record(path: Path) -> None:
    """``llm_overhead.record``'s answers for the non-streamed and 200-chunk cases, as JSON."""
    sys.path.insert(0, str(ROOT / "examples"))
    from _fake_llm import FakeLLM  # type: ignore[import-not-found]

    from benchmarks.llm_overhead import record

    with FakeLLM.threaded() as fake:
        recorded = record(fake)
    answers: dict[str, list[str]] = {}
    for key, case in _ANSWERS.items():
        headers, body = recorded[case]
        answers[key] = [headers["content-type"], body.decode()]
    path.write_text(json.dumps(answers))


def _child(
    sdk: str,
    where: str,
    pairs: int,
    answers_path: str,
    library: str,
    gc_on: bool = False,
    stream: bool = False,
) -> None:
    """The measured process (under valgrind)."""
    import ctypes

    import httpx2

    from benchmarks.llm_overhead import CASES, clients, make_call
    from tracing import AsyncTracing
    from tracing._context import _trace_var

    key = f"{sdk}-stream" if stream else sdk
    content_type, body = json.loads(Path(answers_path).read_text())[key]

    def answer(request: Any) -> Any:
        return httpx2.Response(200, headers={"content-type": content_type}, content=body)

    base_url = "http://fake.invalid/v1" if sdk == "openai" else "http://fake.invalid"

    def make() -> Any:
        return clients(sdk, base_url, httpx2.MockTransport(answer))

    tracer = AsyncTracing(
        endpoint="http://127.0.0.1:9", max_queue_size=10**6, flush_at=10**6, flush_interval=0
    )
    plain, traced = make(), make()
    tracer.instrument(traced)

    case = CASES[_ANSWERS[key]]  # (sdk, model, stream): llm_overhead's own calls
    calls = [make_call(plain, *case), make_call(traced, *case)]

    def drain() -> None:
        tracer._queue.settle(sent=len(tracer._queue.take(10**9)))

    start = ctypes.CDLL(library).start_instrumentation
    trace = tracer.trace("bench") if where == "inside" else None
    token = _trace_var.set(trace)
    for warm in range(20):  # warm-up: imports, lazy set-up; then the simulated caches
        if warm == 15:
            start()  # no-op once instrumented (and outside valgrind)
        calls[0]()
        calls[1]()
    drain()
    gc.collect()
    if not gc_on:
        gc.disable()
    counted = [_COUNTED["plain"][0], _COUNTED["traced"][0]]
    for pair in range(pairs):
        for which in (0, 1) if pair % 2 == 0 else (1, 0):
            counted[which](calls[which])
        if pair % 20 == 19:
            drain()
    gc.enable()
    drain()
    _trace_var.reset(token)


def _run(
    sdk: str,
    where: str,
    pairs: int,
    answers: Path,
    out_dir: Path,
    library: Path,
    gc_on: bool,
    caches: str,
    stream: bool,
) -> dict[str, list[int]]:
    """One client's calls in one setting under callgrind: the events counted per arm."""
    out = out_dir / f"cg.{sdk}.{where}{'.stream' if stream else ''}"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--cache-sim=yes",
            *_CACHES[caches],
            "--branch-sim=yes",
            "--instr-atstart=no",
            "--collect-atstart=no",
            *(f"--toggle-collect={function}" for _, function in _COUNTED.values()),
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks.llm_callgrind",
            "--child",
            sdk,
            where,
            str(pairs),
            str(answers),
            str(library),
            *(["--gc"] if gc_on else []),
            *(["--stream"] if stream else []),
        ],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        stderr=subprocess.DEVNULL,
    )
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", f"--show={','.join(_EVENTS)}", str(out)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = {}
    for key, (_, function) in _COUNTED.items():
        for line in text.splitlines():
            if re.search(rf"\b{function} \[", line):  # the function, not its clinic wrapper
                numbers = re.findall(r"([\d,]+) \(", line)
                rows[key] = [int(n.replace(",", "")) for n in numbers[: len(_EVENTS)]]
                break
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sdk, where, pairs, answers, library, *flags = sys.argv[2:]
        _child(sdk, where, int(pairs), answers, library, "--gc" in flags, "--stream" in flags)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--sdk", nargs="+", default=["openai", "anthropic"])
    parser.add_argument(
        "--gc", action="store_true", help="leave the garbage collector on during the pairs"
    )
    parser.add_argument("--where", nargs="+", default=["own", "inside"])
    parser.add_argument("--caches", choices=sorted(_CACHES), default="default")
    parser.add_argument("--keep", help="directory for the callgrind output files")
    parser.add_argument(
        "--stream", action="store_true", help="200-chunk streams instead of complete answers"
    )
    args = parser.parse_args()
    out_dir = Path(args.keep or tempfile.mkdtemp(prefix="llm-callgrind-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded = out_dir / "answers.json"
    _record(recorded)
    library = _start_library(out_dir)
    print(f"| per call, instrumented minus plain | {' | '.join(_EVENTS)} |")
    print("| --- |" + " ---: |" * len(_EVENTS))
    for sdk in args.sdk:
        for where in args.where:
            counts = _run(
                sdk,
                where,
                args.pairs,
                recorded,
                out_dir,
                library,
                args.gc,
                args.caches,
                args.stream,
            )
            plain, traced = counts["plain"], counts["traced"]
            added = [(t - p) / args.pairs for t, p in zip(traced, plain, strict=True)]
            label = "outside a trace" if where == "own" else "inside a trace"
            if args.stream:
                label += ", a 200-chunk stream"
            cells = " | ".join(f"{value:,.0f}" for value in added)
            print(f"| {sdk}, {label} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
