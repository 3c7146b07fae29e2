"""Fork after the spool opened; print a JSON report on the last line.

argv: endpoint, spool_dir. The parent writes its traces to its part, forks; the child
queues and delivers its own traces through a part of its own, never touching the
parent's; the parent's lock survives the child, and the parent delivers its traces.
"""

import asyncio
import fcntl
import json
import os
import sys
import time
import warnings
from pathlib import Path

from tracing import AsyncTracing, Trace

warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads warns on 3.12+
endpoint, spool_dir = sys.argv[1], Path(sys.argv[2])
tracer = AsyncTracing(endpoint=endpoint, spool_dir=spool_dir, flush_at=100, flush_interval=0)


def parts() -> dict[str, dict[str, int]]:
    return {p.name: {f.name: f.stat().st_size for f in p.iterdir()} for p in spool_dir.glob("p-*")}


def make(prefix: str, n: int) -> list[Trace]:
    return [Trace(prefix, id=f"{prefix}-{i}", metadata={"pid": os.getpid()}) for i in range(n)]


async def parent_queue() -> None:
    await tracer.start()
    for item in make("parent", 5):
        tracer.enqueue(item)
    deadline = time.monotonic() + 10
    while not any(s.get("00000001.seg", 0) > 0 for s in parts().values()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


asyncio.run(parent_queue())
before = parts()
read_fd, write_fd = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_fd)

    async def child_main() -> dict[str, object]:
        start = tracer.stats()
        for item in make("child", 4):
            tracer.enqueue(item)
        await tracer.flush()
        during = parts()
        stats = await tracer.shutdown()
        return {
            "start_enqueued": start.enqueued,
            "child_sent": stats.sent,
            "during": during,
        }

    report = asyncio.run(child_main())
    os.write(write_fd, json.dumps(report).encode())
    os._exit(0)
os.close(write_fd)
os.waitpid(pid, 0)
child = json.loads(os.read(read_fd, 1 << 20).decode())
(name,) = before
lock = os.open(spool_dir / name / "lock", os.O_RDWR)
try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    held = False
except BlockingIOError:
    held = True
os.close(lock)
after_child = parts()


async def parent_finish() -> dict[str, int]:
    await tracer.flush()
    stats = await tracer.shutdown()
    return {"sent": stats.sent, "enqueued": stats.enqueued}


parent = asyncio.run(parent_finish())
print(
    json.dumps(
        {
            "parent_part": name,
            "before": before,
            "child": child,
            "after_child": after_child,
            "lock_held_after_child": held,
            "parent": parent,
            "left": os.listdir(spool_dir),
        }
    )
)
