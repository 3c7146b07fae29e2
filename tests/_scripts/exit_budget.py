"""Two tracers that never shut down share one exit budget against a server that hangs.

argv: endpoint. Each tracer (``timeout=2``, one trace a batch, one batch at a time)
queues two traces with no loop ever. At exit the first tracer tried sends one batch,
which hangs until the shared budget (the longest ``timeout``) runs out; the second is
left no time. ``on_error`` writes ``on_error <tracer>: <message>: <ids>`` to stderr.
"""

import sys
from collections.abc import Callable, Sequence

from tracing import AsyncTracing, Trace


def reporter(name: str) -> Callable[[Exception, Sequence[Trace]], None]:
    def on_error(exc: Exception, traces: Sequence[Trace]) -> None:
        ids = " ".join(sorted(t.id for t in traces))
        print(f"on_error {name}: {exc}: {ids}", file=sys.stderr)

    return on_error


tracers = [
    AsyncTracing(
        endpoint=sys.argv[1],
        on_error=reporter(name),
        timeout=2.0,
        max_batch_size=1,
        max_concurrency=1,
        flush_at=100,
        flush_interval=0,
    )
    for name in ("a", "b")
]
for name, tracer in zip("ab", tracers, strict=True):
    for i in range(2):
        assert tracer.enqueue(Trace("exit", id=f"{name}-{i}"))
