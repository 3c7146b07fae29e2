"""The bounded trace queue and the counters that account for every trace.

A deque, not an ``asyncio.Queue``: a failed batch must go back to the *front*, callers
on other threads must get an answer at once, and the loop it wakes changes across
``asyncio.run()`` calls. One lock guards the deque and the counters, so ``snapshot()``
always satisfies ``enqueued + replayed == sent + failed + dropped + queue_size + spooled +
in_flight`` (``spooled`` and ``replayed`` move only with a spool: ``_spool_queue``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from ._models import ApiResponse, Stats, Trace

__all__ = ["TraceQueue"]


class TraceQueue:
    """Holds traces from ``enqueue()`` until a batch takes them; counts what happens next.

    Capacity covers queued and in-flight traces together, so a failed batch always fits
    back at the front.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._items: deque[Trace] = deque()
        self.enqueued = self.sent = self.failed = self.dropped = 0
        self.retries = self.batches = self.in_flight = 0
        self.spooled = self.replayed = 0
        # Traces accepted but not yet in _items (the spool writer's inbox): queue_size.
        self._held = 0

    def after_fork(self) -> None:
        """Forget the parent's traces and counters (the lock may be held by a dead thread)."""
        self._reset()

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return (
            f"<TraceQueue queued={len(self._items)} in_flight={self.in_flight} max={self.max_size}>"
        )

    def put(self, trace: Trace) -> bool:
        """Append a trace; False (and counted as dropped) when the queue is full.

        The lock is taken by ``acquire()``/``release()``, not ``with``: a ``with`` block
        looks up and binds ``__enter__`` and ``__exit__`` and calls ``__exit__`` with
        three arguments, ~600 instructions more per trace queued (callgrind)."""
        lock = self._lock
        lock.acquire()
        try:
            self.enqueued += 1
            if len(self._items) + self.in_flight >= self.max_size:
                self.dropped += 1
                return False
            self._items.append(trace)
            return True
        finally:
            lock.release()

    def count_dropped(self) -> None:
        """Count a trace that was handed over but refused before the queue (shut down)."""
        with self._lock:
            self.enqueued += 1
            self.dropped += 1

    def take(self, limit: int) -> list[Trace]:
        """Pop up to ``limit`` traces from the front; they are in flight until settled."""
        with self._lock:
            items = self._items
            count = min(limit, len(items))
            batch = [items.popleft() for _ in range(count)]
            self.in_flight += count
            return batch

    def requeue(self, traces: Sequence[Trace]) -> None:
        """Put in-flight traces back at the front, in their order."""
        with self._lock:
            self._items.extendleft(reversed(traces))
            self.in_flight -= len(traces)

    def answered(
        self, delivered: Sequence[Trace], rejected: Sequence[tuple[Trace, ApiResponse]]
    ) -> None:
        """In-flight traces the server answered for: delivered, or rejected for good."""
        self.settle(sent=len(delivered), failed=len(rejected))

    def give_up(self, traces: Sequence[Trace]) -> list[Trace]:
        """In-flight traces that will not be delivered now: return those lost (``failed``).

        Without a spool that is all of them; a spool keeps those on disk (``spooled``).
        """
        self.settle(failed=len(traces))
        return list(traces)

    def settle(self, *, sent: int = 0, failed: int = 0) -> None:
        """In-flight traces that were delivered or failed for good."""
        with self._lock:
            self.in_flight -= sent + failed
            self.sent += sent
            self.failed += failed

    def count(self, *, retries: int = 0, batches: int = 0) -> None:
        with self._lock:
            self.retries += retries
            self.batches += batches

    def snapshot(self) -> Stats:
        with self._lock:
            return Stats(
                enqueued=self.enqueued,
                sent=self.sent,
                failed=self.failed,
                dropped=self.dropped,
                retries=self.retries,
                batches=self.batches,
                queue_size=len(self._items) + self._held,
                in_flight=self.in_flight,
                spooled=self.spooled,
                replayed=self.replayed,
            )
