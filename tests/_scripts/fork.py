"""Fork with traces queued in the parent; print a JSON report on the last line.

argv: endpoint, "flush" (the parent has a flusher that ran before fork) or "leave".
"""

import asyncio
import json
import os
import sys
import warnings

import attrs

from tracing import AsyncTracing, Trace

warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads warns on 3.12+
endpoint, parent_mode = sys.argv[1], sys.argv[2]
tracer = AsyncTracing(
    endpoint=endpoint, flush_at=100, flush_interval=0, retry_backoff=0.001, retry_backoff_max=0.01
)


def make(prefix: str, n: int) -> list[Trace]:
    return [
        Trace(prefix, id=f"{prefix}-{os.getpid()}-{i}", metadata={"pid": os.getpid()})
        for i in range(n)
    ]


async def parent_queue(items: list[Trace]) -> None:
    for item in items[:3]:
        tracer.enqueue(item)
    if parent_mode == "flush":
        await tracer.flush()
    for item in items[3:]:
        tracer.enqueue(item)


parent_items = make("parent", 6)
asyncio.run(parent_queue(parent_items))

read_fd, write_fd = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_fd)
    start = attrs.asdict(tracer.stats())
    start_repr = repr(tracer)

    async def child_main() -> dict[str, object]:
        items = make("child", 4)
        for item in items:
            tracer.enqueue(item)
        stats = await tracer.shutdown()
        # Dropped (shut down): the child's own drop warning, made anew at fork, logs it.
        late = tracer.enqueue(Trace("late", id=f"late-{os.getpid()}"))
        return {
            "child_ids": [t.id for t in items],
            "child_stats": attrs.asdict(stats),
            "child_late_enqueued": late,
        }

    report = asyncio.run(child_main())
    report["child_start"] = start
    report["child_repr"] = start_repr
    os.write(write_fd, json.dumps(report).encode())
    os.close(write_fd)
    os._exit(0)

os.close(write_fd)
chunks = []
while chunk := os.read(read_fd, 65536):
    chunks.append(chunk)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0
child_report = json.loads(b"".join(chunks))


async def parent_finish() -> dict[str, object]:
    stats = await tracer.shutdown()
    return attrs.asdict(stats)


parent_stats = asyncio.run(parent_finish())
print(
    json.dumps(
        {
            **child_report,
            "parent_ids": [t.id for t in parent_items],
            "parent_stats": parent_stats,
        }
    )
)
