"""The sink goes down for a while: memory stays flat at the queue bound, drops are
counted, and delivery recovers afterwards.

    python -m benchmarks.outage [--append benchmarks/RESULTS.md]

One process drives ``AsyncTracing`` at its defaults (``max_queue_size=10,000``) with a
steady 5,000 traces/s for 24 s. The sink (its own process, on a fixed loopback port) is
killed at 4 s and started again on the same port at 12 s, so the SDK meets refused
connections, not a polite 503. Every half second it samples current RSS (from
``/proc/self/statm``) and ``tracer.stats()``. At the end, ``shutdown()`` (bounded) and a
check that every trace is accounted for: ``enqueued == sent + failed + dropped`` and the
sink's count (both lives) equals ``sent``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from typing import Any

from tracing import AsyncTracing, LlmUsage

from ._common import (
    INPUT,
    METADATA,
    MODEL,
    NAME,
    OUTPUT,
    PROVIDER,
    append_section,
    free_port,
    rss_now_mb,
    sink_stats,
    start_sink,
)

LIFETIME = 120  # seconds the sink lives
RATE, SECONDS, DOWN_AT, UP_AT = 5_000, 24.0, 4.0, 12.0
TICK = 0.01  # enqueue RATE * TICK traces every TICK seconds
USAGE = LlmUsage(MODEL, PROVIDER, prompt_tokens=152, completion_tokens=61)


async def drive(port: int, sink: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    tracer = AsyncTracing(endpoint=url)
    await tracer.start()
    samples: list[tuple[float, float, Any, int]] = []
    counted = 0  # records the first sink life counted before it was killed
    per_tick = int(RATE * TICK)
    start = time.perf_counter()
    next_sample = 0.0
    state = "up"
    while (now := time.perf_counter() - start) < SECONDS:
        for _ in range(per_tick):
            trace = tracer.trace(NAME, input=INPUT, metadata=METADATA)
            await trace.end(output=OUTPUT, llm_usage=USAGE)
        if state == "up" and now >= DOWN_AT:
            counted = (await asyncio.to_thread(sink_stats, url))["records"]
            sink[0].kill()
            sink[0].wait(10)
            state = "down"
        elif state == "down" and now >= UP_AT:
            sink[0] = await asyncio.to_thread(start_sink, port, LIFETIME)
            state = "up again"
        if now >= next_sample:
            samples.append((now, rss_now_mb(), tracer.stats(), 0))
            next_sample += 0.5
        await asyncio.sleep(TICK)
    stats = await tracer.shutdown(timeout=30)
    final = counted + (await asyncio.to_thread(sink_stats, url))["records"]
    return {"samples": samples, "stats": stats, "sink_total": final}


def report(result: dict[str, Any]) -> str:
    samples, stats = result["samples"], result["stats"]
    lines = [
        "## Outage (`benchmarks/outage.py`)",
        "",
        f"Defaults (queue bound 10,000), paced at up to {RATE:,} traces/s for "
        f"{SECONDS:.0f} s; the sink process is killed at {DOWN_AT:.0f} s and restarted "
        f"on the same port at {UP_AT:.0f} s.",
        "",
        "| t (s) | RSS MB | queued | in flight | sent | dropped | failed |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t, rss, s, _ in samples[::2]:
        lines.append(
            f"| {t:.1f} | {rss:.0f} | {s.queue_size:,} | {s.in_flight:,} | {s.sent:,} "
            f"| {s.dropped:,} | {s.failed:,} |"
        )
    during = [rss for t, rss, _, _ in samples if DOWN_AT + 3 <= t <= UP_AT]
    recovered = next(
        (t for t, _, s, _ in samples if t > UP_AT and s.queue_size + s.in_flight < 1_000), None
    )
    balanced = stats.enqueued == stats.sent + stats.failed + stats.dropped
    lines += [
        "",
        f"- RSS while the queue sat at its bound: {min(during, default=0):.0f}-"
        f"{max(during, default=0):.0f} MB.",
        "- Backlog below 1,000 again at: "
        + (
            f"{recovered:.1f} s ({recovered - UP_AT:.1f} s after the sink came back)"
            if recovered
            else "not within the run"
        )
        + ".",
        f"- Final: enqueued {stats.enqueued:,} = sent {stats.sent:,} + failed {stats.failed:,} "
        f"+ dropped {stats.dropped:,}: {'yes' if balanced else 'NO'}; the sink counted "
        f"{result['sink_total']:,} (sent: {stats.sent:,}).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--append", help="append the section to this markdown file")
    args = parser.parse_args()
    port = free_port()
    sink = [start_sink(port, LIFETIME)]
    try:
        result = asyncio.run(drive(port, sink))
    finally:
        sink[0].kill()  # by PID: the process this script started
        sink[0].wait(10)
    append_section(args.append, report(result))


if __name__ == "__main__":
    main()
