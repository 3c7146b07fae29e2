"""A tracer with a spool in its own process, driven by JSON commands on stdin.

argv: endpoint, spool_dir, JSON of extra AsyncTracing options. Each command line gets one
JSON answer line on stdout (``{"ready": ...}`` first). Commands (``op``):

- ``enqueue`` ``n``: enqueue n traces; answers the accepted ids and the monotonic time
  right after the last ``enqueue()`` returned.
- ``stream`` ``pause``: enqueue one trace every ``pause`` seconds forever, printing
  ``{"id", "t"}`` per accepted trace (the test SIGKILLs it).
- ``busy`` ``every``: enqueue traces flat out, yielding to the event loop after each
  ``every`` (a busy service), printing ``{"ids", "t"}`` per group forever.
- ``flush``: ``await tracer.flush()`` (a DeliveryError is reported, not raised).
- ``wait_delivered`` ``n``: until ``sent + failed >= n``.
- ``stats``; ``shutdown`` ``timeout``; ``fsize`` ``limit`` (RLIMIT_FSIZE soft limit);
  ``exit``: return from main without shutdown (atexit delivery).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import sys
import time
from typing import Any

import attrs

from tracing import AsyncTracing, DeliveryError

endpoint, spool_dir, raw_options = sys.argv[1], sys.argv[2], sys.argv[3]
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
errors: list[str] = []


def on_error(exc: Exception, traces: Any) -> None:
    errors.extend(f"{t.id}: {exc}" for t in traces)


def say(value: Any) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def stats(tracer: AsyncTracing) -> dict[str, Any]:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {**attrs.asdict(tracer.stats()), "errors": len(errors), "maxrss_kb": peak}


async def enqueue(tracer: AsyncTracing, count: int) -> list[str]:
    accepted = []
    for _ in range(count):
        trace = tracer.trace("spooled", metadata={"pid": os.getpid()}, input="x" * 100)
        queued = tracer.enqueue(trace)
        if queued:
            accepted.append(trace.id)
    return accepted


async def stream(tracer: AsyncTracing, pause: float) -> None:
    while True:
        trace = tracer.trace("streamed", input="y" * 200)
        if tracer.enqueue(trace):
            say({"id": trace.id, "t": time.monotonic()})
        await asyncio.sleep(pause)


BUSY_INPUT = {"messages": [{"role": "user", "content": "q" * 400}], "model": "m"}
BUSY_OUTPUT = {"role": "assistant", "content": "a" * 400}


async def busy(tracer: AsyncTracing, every: int) -> None:
    while True:
        ids = []
        for _ in range(every):
            trace = tracer.trace("busy", input=BUSY_INPUT)
            trace.output = BUSY_OUTPUT
            if tracer.enqueue(trace):
                ids.append(trace.id)
        say({"ids": ids, "t": time.monotonic()})  # after the last of them was accepted
        await asyncio.sleep(0)


async def handle(tracer: AsyncTracing, command: dict[str, Any]) -> Any:
    op = command["op"]
    if op == "enqueue":
        ids = await enqueue(tracer, command["n"])
        return {"ids": ids, "t": time.monotonic(), **stats(tracer)}
    if op == "stream":
        await stream(tracer, command["pause"])
    if op == "busy":
        await busy(tracer, command["every"])
    if op == "flush":
        try:
            await tracer.flush()
        except DeliveryError as exc:
            return {"requeued": exc.requeued, **stats(tracer)}
        return {"requeued": 0, **stats(tracer)}
    if op == "wait_delivered":
        while (s := tracer.stats()).sent + s.failed < command["n"]:  # noqa: ASYNC110 (polls another process)
            await asyncio.sleep(0.01)
        return stats(tracer)
    if op == "shutdown":
        await tracer.shutdown(timeout=command.get("timeout"))
        return stats(tracer)
    if op == "fsize":
        resource.setrlimit(resource.RLIMIT_FSIZE, (command["limit"], resource.RLIM_INFINITY))
        return {}
    return stats(tracer)


async def main() -> None:
    options: dict[str, Any] = {"flush_interval": 0.05, "retry_backoff": 0.01}
    options["retry_backoff_max"] = 0.2
    options.update(json.loads(raw_options))
    tracer = AsyncTracing(endpoint=endpoint, spool_dir=spool_dir, on_error=on_error, **options)
    await tracer.start()
    say({"ready": os.getpid(), **stats(tracer)})
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        command = json.loads(line)
        if command["op"] == "exit":
            say(stats(tracer))
            return
        say(await handle(tracer, command))


if __name__ == "__main__":
    asyncio.run(main())
