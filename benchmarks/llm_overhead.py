"""What ``tracer.instrument(client)`` adds to an API call, measured against the same
calls uninstrumented in the same run.

    python -m benchmarks.llm_overhead [--blocks 30] [--calls 20] [--append benchmarks/RESULTS.md]

Sync ``openai.OpenAI`` and ``anthropic.Anthropic`` clients make the same call with and
without instrumentation, in alternating blocks (``--blocks`` of each, ``--calls`` calls a
block), timed by the process's CPU clock (``time.process_time``: other processes on a
loaded machine and the server's work are not counted). The SDKs themselves spend about
2 ms of CPU per call, so a few microseconds hide in the noise of one block: the report
gives the best block of each arm (the usual estimator for a cost under noise, as
``timeit`` does) and the medians. Two settings:

- in process: the clients' HTTP client has an ``httpx2.MockTransport`` that answers with
  bytes recorded once from ``examples/_fake_llm.py`` (real JSON and SSE bodies), so no
  socket or server work is in the measurement;
- over loopback: the fake server in its own process.

Each call is outside any trace, so each instrumented call also builds and queues a trace
of its own (the most work per call). Per-chunk cost: (added cost of a 200-chunk stream -
added cost of a 20-chunk stream) / 180.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai

from benchmarks._llm_direct import per_call_us, per_chunk_us, recorded
from tracing import AsyncTracing

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from _fake_llm import FakeLLM  # noqa: E402

MESSAGES: Any = [{"role": "user", "content": "Summarise the incident report in two lines."}]
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


def clients(sdk: str, base_url: str, transport: Any) -> Any:
    http = httpx2.Client(transport=transport) if transport is not None else None
    if sdk == "openai":
        return openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, http_client=http)
    return anthropic.Anthropic(base_url=base_url, api_key="k", max_retries=0, http_client=http)


def per_call(call: Callable[[], None], calls: int, clock: Callable[[], float]) -> float:
    """Seconds per call over ``calls`` calls by ``clock``."""
    began = clock()
    for _ in range(calls):
        call()
    return (clock() - began) / calls


Timing = tuple[float, float, float, float]  # best and median, plain and instrumented


def compare(
    tracer: AsyncTracing,
    make: Callable[[], Any],
    case: tuple[str, str, bool],
    blocks: int,
    calls: int,
    control: bool = False,
) -> Timing:
    """CPU seconds per call, uninstrumented and instrumented, blocks alternating;
    ``control``: both arms uninstrumented (the noise floor of the comparison)."""
    sdk, model, stream = case
    clock = time.process_time
    plain, traced = make(), make()
    if not control:
        tracer.instrument(traced)
    plain_call, traced_call = (make_call(c, sdk, model, stream) for c in (plain, traced))
    for call in (plain_call, traced_call):  # warm up connections, caches, imports
        per_call(call, calls, clock)
    base: list[float] = []
    instrumented: list[float] = []
    for block in range(blocks):
        # ABBA order, so a drift of the machine's speed falls on both arms alike.
        arms = ((base, plain_call), (instrumented, traced_call))
        for times, call in arms if block % 2 == 0 else reversed(arms):
            times.append(per_call(call, calls, clock))
        # What the flusher would have taken and sent, so memory stays flat between blocks.
        tracer._queue.settle(sent=len(tracer._queue.take(10**9)))
    plain.close()
    traced.close()
    return (
        min(base),
        min(instrumented),
        statistics.median(base),
        statistics.median(instrumented),
    )


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


def run(blocks: int, calls: int) -> tuple[dict[str, float], dict[str, dict[str, Timing]]]:
    tracer = AsyncTracing(
        endpoint="http://127.0.0.1:9", max_queue_size=10**6, flush_at=10**6, flush_interval=0
    )
    results: dict[str, dict[str, Timing]] = {"in process": {}, "loopback": {}}
    with FakeLLM.threaded() as fake:
        answers = record(fake)
        direct = measure_direct(tracer, fake)
    for name, case in CASES.items():
        headers, body = answers[name]

        def answer(request: httpx2.Request, headers: Any = headers, body: Any = body) -> Any:
            return httpx2.Response(200, headers=headers, content=body)

        base_url = "http://fake.invalid/v1" if case[0] == "openai" else "http://fake.invalid"
        maker = client_maker(case[0], base_url, httpx2.MockTransport(answer))
        results["in process"][name] = compare(tracer, maker, case, blocks, calls)
        if not case[2]:
            control = compare(tracer, maker, case, blocks, calls, control=True)
            results["in process"][f"{name} (control: both uninstrumented)"] = control
        print(f"in process: {name} done", file=sys.stderr)
    with server_process() as url:
        for name, case in CASES.items():
            base_url = f"{url}/v1" if case[0] == "openai" else url
            maker = client_maker(case[0], base_url, None)
            results["loopback"][name] = compare(tracer, maker, case, max(blocks // 2, 3), calls)
            print(f"loopback: {name} done", file=sys.stderr)
    asyncio.run(tracer.shutdown(timeout=0))
    return direct, results


def measure_direct(tracer: AsyncTracing, fake: FakeLLM) -> dict[str, float]:
    """The instrumentation's own microseconds per call and per chunk (``_llm_direct``)."""
    out: dict[str, float] = {}
    for sdk in ("openai", "anthropic"):
        base_url = fake.openai_url if sdk == "openai" else fake.anthropic_url
        model = "gpt-4o-chunks200" if sdk == "openai" else "claude-chunks200"
        for stream in (False, True):
            client = clients(sdk, base_url, None)
            options, value, chunks = recorded(client, make_recorded(sdk, model, stream))
            if stream:
                out[f"{sdk}: per stream chunk"] = per_chunk_us(tracer, client, options, chunks)
            else:
                out[f"{sdk}: per call"] = per_call_us(tracer, client, options, value)
            client.close()
    return out


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


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def report(
    direct: dict[str, float], results: dict[str, dict[str, Timing]], blocks: int, calls: int
) -> str:
    lines = [
        "## LLM client instrumentation (`benchmarks/llm_overhead.py`)",
        "",
        "The instrumentation's own CPU time (best of 9 runs; recorded requests, responses "
        "and stream chunks of the real clients; each call queues a trace of its own):",
        "",
        "| what | added (us) | target (us) |",
        "| --- | ---: | ---: |",
        *(
            f"| {name} | {value:.2f} | {'1' if 'chunk' in name else '30'} |"
            for name, value in direct.items()
        ),
        "",
        "Whole calls through the SDKs, instrumented against uninstrumented:",
        "",
        f"openai {openai.__version__}, anthropic {anthropic.__version__}, sync clients, CPU "
        f"time per call; {blocks} alternating blocks of {calls} calls per arm in process, "
        f"{max(blocks // 2, 3)} over loopback. Each call is outside any trace, so each "
        "instrumented call also makes and queues a trace of its own. The control rows compare "
        "two uninstrumented clients: the noise floor of this comparison on this machine. "
        "Targets: < 30 us added per call, < 1 us per chunk.",
        "",
        "| setting | call | uninstrumented, best (us) | instrumented, best (us) "
        "| added, best (us) | added, medians (us) | ratio (best) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for setting, rows in results.items():
        for name, (base, traced, base_median, traced_median) in rows.items():
            lines.append(
                f"| {setting} | {name} | {_us(base)} | {_us(traced)} | {_us(traced - base)} "
                f"| {_us(traced_median - base_median)} | {traced / base:.3f} |"
            )
    lines.append("")
    for setting, rows in results.items():
        for sdk, label in (("openai chat", "chunk"), ("anthropic messages", "event")):
            short = rows[f"{sdk}, stream of 20 {label}s"]
            long = rows[f"{sdk}, stream of 200 {label}s"]
            per_chunk = ((long[1] - long[0]) - (short[1] - short[0])) / 180
            lines.append(
                f"- {setting}, {sdk}: added per stream {label} (best blocks): "
                f"{per_chunk * 1e6:+.2f} us."
            )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--append", help="append the section to this markdown file")
    args = parser.parse_args()
    direct, results = run(args.blocks, args.calls)
    text = report(direct, results, args.blocks, args.calls)
    print(text)
    if args.append:
        with open(args.append, "a") as out:
            out.write("\n" + text)


if __name__ == "__main__":
    main()
