"""The ``tracing`` logger and a rate-limited warning for repeated events."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import Trace

logger = logging.getLogger("tracing")


class RateLimitedWarning:
    """Counts an event and logs it at WARNING at most once per ``interval`` seconds.

    The first occurrence is logged at once; later ones are summed into the next line, or
    into ``flush()``. ``hit(reason=...)`` also counts per reason, and the line then ends
    with each reason's count (``: 3 because the queue is full, 1 because ...``). Safe to
    call from any thread.
    """

    def __init__(self, message: str, interval: float = 5.0) -> None:
        self.message = message
        self._interval = interval
        self._lock = threading.Lock()
        self._pending = 0
        self._reasons: dict[str, int] = {}
        self._last = -float("inf")

    def hit(self, count: int = 1, reason: str | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            self._pending += count
            if reason is not None:
                self._reasons[reason] = self._reasons.get(reason, 0) + count
            if now - self._last < self._interval:
                return
            self._last = now
            pending, reasons = self._take()
        self._log(pending, reasons)

    def flush(self) -> None:
        """Log what was counted since the last line, if anything."""
        with self._lock:
            pending, reasons = self._take()
        if pending:
            self._log(pending, reasons)

    def _take(self) -> tuple[int, dict[str, int]]:
        pending, reasons = self._pending, self._reasons
        self._pending, self._reasons = 0, {}
        return pending, reasons

    def _log(self, pending: int, reasons: dict[str, int]) -> None:
        if not reasons:
            logger.warning(self.message, pending)
            return
        detail = ", ".join(f"{n} because {reason}" for reason, n in reasons.items())
        logger.warning("%s: %s", self.message % pending, detail)


class NeverEnded:
    """Traces made by ``tracer.trace()`` that were garbage-collected without ``end()``:
    counted, and logged at WARNING at most once per ``interval`` with the names and ids of
    the first few. It runs inside finalisers (any thread, at any allocation), so its lock
    is re-entrant: a collection while this very code holds it must not deadlock.
    """

    SHOWN = 5

    def __init__(self, interval: float = 5.0) -> None:
        self._interval = interval
        self._lock = threading.RLock()
        self._count = 0
        self._shown: list[str] = []
        self._last = -float("inf")

    def hit(self, name: str, trace_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._count += 1
            if len(self._shown) < self.SHOWN:
                self._shown.append(f"{name!r:.80} ({trace_id:.80})")
            if now - self._last < self._interval:
                return
            self._last = now
            taken = self._take()
        self._log(*taken)

    def flush(self) -> None:
        """Log what was counted since the last line, if anything."""
        with self._lock:
            count, shown = self._take()
        if count:
            self._log(count, shown)

    def _take(self) -> tuple[int, list[str]]:
        taken = self._count, self._shown
        self._count, self._shown = 0, []
        return taken

    @staticmethod
    def _log(count: int, shown: list[str]) -> None:
        more = f", and {count - len(shown)} more" if count > len(shown) else ""
        logger.warning(
            "tracing: %d trace(s) were never ended and are not sent (call `await "
            "trace.end()` or use `async with tracer.trace(...)`): %s%s",
            count,
            ", ".join(shown),
            more,
        )


_NEVER_ENDED = NeverEnded()
never_ended = _NEVER_ENDED.hit
flush_never_ended = _NEVER_ENDED.flush
atexit.register(flush_never_ended)  # before logging's own exit hook (atexit is LIFO)
# A forked child starts with a fresh lock and no counts (the parent reports its own).
os.register_at_fork(after_in_child=lambda: NeverEnded.__init__(_NEVER_ENDED))


def ids(traces: Iterable[Trace]) -> str:
    """Trace ids for a log line, shortened when there are many (never payloads)."""
    listed = [t.id for t in traces]
    if len(listed) > 5:
        return ", ".join(listed[:5]) + f", ... ({len(listed)} in all)"
    return ", ".join(listed)
