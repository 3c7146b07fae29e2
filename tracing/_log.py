"""The ``tracing`` logger and a rate-limited warning for repeated events."""

from __future__ import annotations

import logging
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


def ids(traces: Iterable[Trace]) -> str:
    """Trace ids for a log line, shortened when there are many (never payloads)."""
    listed = [t.id for t in traces]
    if len(listed) > 5:
        return ", ".join(listed[:5]) + f", ... ({len(listed)} in all)"
    return ", ".join(listed)
