"""What ``tracer.instrument(client)`` adds to an API call, measured against the same
calls uninstrumented in the same run.

    python -m benchmarks.llm_overhead [--seconds 6] [--append benchmarks/RESULTS.md]

Sync ``openai.OpenAI`` and ``anthropic.Anthropic`` clients make the same call with and
without instrumentation, one call of each in turn (the order alternating pair by pair),
each call timed by the process's CPU clock (``time.process_time``: other processes on a
loaded machine and the server's work are not counted). The added cost is the median of
the pairs' differences, with a 95 % confidence interval from the order statistics: a
pair's two calls see the same minute of the machine, and the median of ~thousands of
differences resolves a few microseconds inside the ~1 ms of CPU an SDK spends per call
(the control rows, two uninstrumented clients, show the method's zero). Settings:

- in process: the clients' HTTP client has an ``httpx2.MockTransport`` that answers with
  bytes recorded once from ``examples/_fake_llm.py`` (real JSON and SSE bodies), so no
  socket or server work is in the measurement; calls outside any trace (each
  instrumented call makes and queues a trace of its own, the most work per call) and
  inside a current trace (the usual case under ``@tracer.observe()``: one span more);
- over loopback: the fake server in its own process, calls outside any trace.

The mean of the pairs' differences is reported beside their median: the extra objects
an instrumented call makes bring garbage collections forward, and the few pairs a
collection lands in are outliers the median leaves out.

Per-chunk cost, two ways: (added cost of a 200-chunk stream - added cost of a 20-chunk
stream) / 180, whose interval carries the noise of whole 30 ms streams; and chunk by
chunk (``compare_chunks``): an uninstrumented and an instrumented stream read in step,
one chunk of each in turn, each ``next()`` timed. The last table times the
instrumentation's own code in a tight loop (``_llm_direct.py``), where its caches stay
warm: a lower bound of the whole-call cost, not a substitute for it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2

from benchmarks._llm_direct import (
    per_async_chunk_us,
    per_call_after_us,
    per_call_cold_us,
    per_call_us,
    per_chunk_us,
    recorded,
    written_out_us,
)
from benchmarks._llm_pairs import MESSAGES, clients, compare_async
from benchmarks._llm_pairs import drain as _drain
from benchmarks._llm_pairs import mean_interval as _mean_interval
from benchmarks._llm_pairs import median_interval as _median_interval
from benchmarks._llm_report import ChunkTiming, Timing, report
from tracing import AsyncTracing
from tracing._context import _trace_var

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from _fake_llm import FakeLLM  # noqa: E402

CASES: dict[str, tuple[str, str, bool]] = {
    # name: (sdk, model, stream)
    "openai chat": ("openai", "gpt-4o-chunks20", False),
    "openai chat, stream of 20 chunks": ("openai", "gpt-4o-chunks20", True),
    "openai chat, stream of 200 chunks": ("openai", "gpt-4o-chunks200", True),
    "anthropic messages": ("anthropic", "claude-chunks20", False),
    "anthropic messages, stream of 20 events": ("anthropic", "claude-chunks20", True),
    "anthropic messages, stream of 200 events": ("anthropic", "claude-chunks200", True),
}


def make_call(client: Any, sdk: str, model: str, stream: bool) -> Callable[[], None]:
    if sdk == "openai":

        def call() -> None:
            result = client.chat.completions.create(
                model=model,
                messages=MESSAGES,
                stream=stream,
                **({"stream_options": {"include_usage": True}} if stream else {}),
            )
            if stream:
                for _ in result:
                    pass

    else:

        def call() -> None:
            result = client.messages.create(
                model=model, max_tokens=512, messages=MESSAGES, stream=stream
            )
            if stream:
                for _ in result:
                    pass

    return call


def record(fake: FakeLLM) -> dict[str, tuple[dict[str, str], bytes]]:
    """One real answer per case from the fake server: headers and body bytes."""
    answers = {}
    with httpx2.Client() as http:
        for name, (sdk, model, stream) in CASES.items():
            if sdk == "openai":
                url = f"{fake.openai_url}/chat/completions"
                body: dict[str, Any] = {"model": model, "messages": MESSAGES, "stream": stream}
            else:
                url = f"{fake.anthropic_url}/v1/messages"
                body = {"model": model, "max_tokens": 512, "messages": MESSAGES, "stream": stream}
            response = http.post(url, json=body)
            answers[name] = ({"content-type": response.headers["content-type"]}, response.content)
    return answers


def _end_current(tracer: AsyncTracing) -> None:
    current = _trace_var.get()
    if current is not None:
        tracer.enqueue(current)


def compare(
    tracer: AsyncTracing,
    make: Callable[[], Any],
    case: tuple[str, str, bool],
    seconds: float,
    control: bool = False,
    in_trace: bool = False,
) -> Timing:
    """Pairs of calls, one uninstrumented and one instrumented (``control``: both
    uninstrumented), for about ``seconds`` of CPU; ``in_trace``: inside a current trace."""
    sdk, model, stream = case
    clock = time.process_time
    plain, traced = make(), make()
    if not control:
        tracer.instrument(traced)
    arms = [make_call(c, sdk, model, stream) for c in (plain, traced)]
    token = _trace_var.set(tracer.trace("bench") if in_trace else None)
    for _ in range(10):  # warm up connections, caches, imports
        arms[0]()
        arms[1]()
    began = clock()
    arms[0]()
    pairs = min(max(int(seconds / 2 / max(clock() - began, 1e-6)), 100), 5000)
    base: list[float] = []
    added: list[float] = []
    spent = [0.0, 0.0]
    for pair in range(pairs):
        for arm in (0, 1) if pair % 2 == 0 else (1, 0):
            began = clock()
            arms[arm]()
            spent[arm] = clock() - began
        base.append(spent[0])
        added.append(spent[1] - spent[0])
        if pair % 200 == 199:
            if in_trace:  # a fresh trace, so its span list stays short
                _end_current(tracer)
                _trace_var.set(tracer.trace("bench"))
            _drain(tracer)
    if in_trace:
        _end_current(tracer)
    _trace_var.reset(token)
    _drain(tracer)
    plain.close()
    traced.close()
    median, low, high = _median_interval(added)
    mean, half = _mean_interval(added)
    return statistics.median(base), median, low, high, pairs, mean, half


def compare_chunks(
    tracer: AsyncTracing, make: Callable[[], Any], case: tuple[str, str, bool], seconds: float
) -> ChunkTiming:
    """Per stream chunk, measured chunk by chunk: one uninstrumented and one instrumented
    stream of the same answer read in step, one chunk of each in turn (the order
    alternating chunk by chunk), each ``next()`` timed by the CPU clock. The added cost
    of a chunk is the difference of the pair; the first and last 5 chunks of each stream
    (the stream's own start and end) are left out. A pair's two chunks see the same
    moment of the machine and, between them, the other stream's chunk: the SDK's own
    ~25-160 us of work per chunk, as in a real stream. Much tighter than the difference of
    whole 200- and 20-chunk streams, whose every pair carries the noise of a whole
    30 ms stream."""
    sdk, model, _ = case
    clock = time.process_time
    plain, traced = make(), make()
    tracer.instrument(traced)

    def open_stream(client: Any) -> Iterator[Any]:
        if sdk == "openai":
            result = client.chat.completions.create(
                model=model,
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        else:
            result = client.messages.create(
                model=model, max_tokens=512, messages=MESSAGES, stream=True
            )
        return iter(result)

    for _ in range(3):  # warm up
        for streamed in (open_stream(plain), open_stream(traced)):
            for _ in streamed:
                pass
    base: list[float] = []
    added: list[float] = []
    began = clock()
    streams = 0
    while clock() - began < seconds or streams < 10:
        readers = (open_stream(plain), open_stream(traced))
        index = 0
        while True:
            spent = [0.0, 0.0]
            for arm in (0, 1) if index % 2 == 0 else (1, 0):
                start = clock()
                item = next(readers[arm], None)
                spent[arm] = clock() - start
            if item is None:
                break
            if index >= 5:
                base.append(spent[0])
                added.append(spent[1] - spent[0])
            index += 1
        del base[-5:], added[-5:]  # the last 5 chunks: the stream's end
        streams += 1
        _drain(tracer)
    plain.close()
    traced.close()
    median, low, high = _median_interval(added)
    mean, half = _mean_interval(added)
    return statistics.median(base), median, low, high, mean, half, len(added)


@contextmanager
def server_process() -> Iterator[str]:
    """The fake server in a process of its own; yields its base URL; killed by PID."""
    code = (
        "import sys, time; sys.path.insert(0, 'examples'); from _fake_llm import FakeLLM\n"
        "with FakeLLM.threaded() as fake:\n"
        "    print(fake.url, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait(30)


def client_maker(sdk: str, base_url: str, transport: Any) -> Callable[[], Any]:
    return lambda: clients(sdk, base_url, transport)


def run(
    seconds: float,
) -> tuple[dict[str, float], dict[str, dict[str, Timing]], dict[str, ChunkTiming]]:
    tracer = AsyncTracing(
        endpoint="http://127.0.0.1:9", max_queue_size=10**6, flush_at=10**6, flush_interval=0
    )
    chunks: dict[str, ChunkTiming] = {}
    results: dict[str, dict[str, Timing]] = {
        "in process": {},
        "in process, inside a trace": {},
        "in process, async clients": {},
        "loopback": {},
    }
    with FakeLLM.threaded() as fake:
        answers = record(fake)
        direct = measure_direct(tracer, fake, answers)
    for name, case in CASES.items():
        headers, body = answers[name]

        def answer(request: httpx2.Request, headers: Any = headers, body: Any = body) -> Any:
            return httpx2.Response(200, headers=headers, content=body)

        base_url = "http://fake.invalid/v1" if case[0] == "openai" else "http://fake.invalid"
        maker = client_maker(case[0], base_url, httpx2.MockTransport(answer))
        results["in process"][name] = compare(tracer, maker, case, seconds)
        if name.endswith(("200 chunks", "200 events")):
            chunks[name] = compare_chunks(tracer, maker, case, seconds)
            results["in process, async clients"][name] = compare_async(answer, case, seconds)
        if not case[2]:
            control = compare(tracer, maker, case, seconds, control=True)
            results["in process"][f"{name} (control: both uninstrumented)"] = control
            inside = compare(tracer, maker, case, seconds, in_trace=True)
            results["in process, inside a trace"][name] = inside
        print(f"in process: {name} done", file=sys.stderr)
    with server_process() as url:
        for name, case in CASES.items():
            base_url = f"{url}/v1" if case[0] == "openai" else url
            maker = client_maker(case[0], base_url, None)
            results["loopback"][name] = compare(tracer, maker, case, seconds)
            print(f"loopback: {name} done", file=sys.stderr)
    asyncio.run(tracer.shutdown(timeout=0))
    return direct, results, chunks


def measure_direct(
    tracer: AsyncTracing, fake: FakeLLM, answers: dict[str, tuple[dict[str, str], bytes]]
) -> dict[str, float]:
    """The instrumentation's own microseconds per call and per chunk (``_llm_direct``);
    ``answers``: ``record()``'s, for the plain calls the "after" rows make in between."""
    out: dict[str, float] = {}
    for sdk in ("openai", "anthropic"):
        base_url = fake.openai_url if sdk == "openai" else fake.anthropic_url
        model = "gpt-4o-chunks200" if sdk == "openai" else "claude-chunks200"
        for stream in (False, True):
            client = clients(sdk, base_url, None)
            options, value, chunks = recorded(client, make_recorded(sdk, model, stream))
            if stream:
                out[f"{sdk}: per stream chunk"] = per_chunk_us(tracer, client, options, chunks)
                out[f"{sdk}: per stream chunk, async reader"] = per_async_chunk_us(
                    tracer, client, options, chunks
                )
            else:
                out[f"{sdk}: per call"] = per_call_us(tracer, client, options, value)
                cold = per_call_cold_us(tracer, client, options, value)
                out[f"{sdk}: per call, each after a 2 MiB memory copy (caches cold)"] = cold
                plain = plain_caller(sdk, answers)
                after = per_call_after_us(tracer, client, options, value, plain)
                out[f"{sdk}: per call, each right after a plain SDK call"] = after
                write, encode = written_out_us(tracer, client, options, value)
                out[f"{sdk}: per call, in the flusher: writing the span out"] = write
                out[f"{sdk}: per call, in the flusher: then encoding the trace"] = encode
            client.close()
    return out


def plain_caller(
    sdk: str, answers: dict[str, tuple[dict[str, str], bytes]]
) -> Callable[[], object]:
    """One uninstrumented non-streamed call through a recorded answer (no thread, no
    socket: nothing else runs while the call after it is timed)."""
    name = "openai chat" if sdk == "openai" else "anthropic messages"
    headers, body = answers[name]

    def answer(request: httpx2.Request) -> Any:
        return httpx2.Response(200, headers=headers, content=body)

    base_url = "http://fake.invalid/v1" if sdk == "openai" else "http://fake.invalid"
    client = clients(sdk, base_url, httpx2.MockTransport(answer))
    _, model, _ = CASES[name]
    return make_call(client, sdk, model, False)


def make_recorded(sdk: str, model: str, stream: bool) -> Callable[[Any], Any]:
    def run_one(client: Any) -> Any:
        if sdk == "openai":
            return client.chat.completions.create(
                model=model,
                messages=MESSAGES,
                stream=stream,
                **({"stream_options": {"include_usage": True}} if stream else {}),
            )
        return client.messages.create(model=model, max_tokens=512, messages=MESSAGES, stream=stream)

    return run_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="CPU seconds per row")
    parser.add_argument("--append", help="append the section to this markdown file")
    args = parser.parse_args()
    load_before = os.getloadavg()
    direct, results, chunks = run(args.seconds)
    text = report(direct, results, chunks, args.seconds, (load_before, os.getloadavg()))
    print(text)
    if args.append:
        with open(args.append, "a") as out:
            out.write("\n" + text)


if __name__ == "__main__":
    main()
