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
    into ``flush()``. Safe to call from any thread.
    """

    def __init__(self, message: str, interval: float = 5.0) -> None:
        self.message = message
        self._interval = interval
        self._lock = threading.Lock()
        self._pending = 0
        self._last = -float("inf")

    def hit(self, count: int = 1) -> None:
        now = time.monotonic()
        with self._lock:
            self._pending += count
            if now - self._last < self._interval:
                return
            pending, self._pending, self._last = self._pending, 0, now
        logger.warning(self.message, pending)

    def flush(self) -> None:
        """Log what was counted since the last line, if anything."""
        with self._lock:
            pending, self._pending = self._pending, 0
        if pending:
            logger.warning(self.message, pending)


def ids(traces: Iterable[Trace]) -> str:
    """Trace ids for a log line, shortened when there are many (never payloads)."""
    listed = [t.id for t in traces]
    if len(listed) > 5:
        return ", ".join(listed[:5]) + f", ... ({len(listed)} in all)"
    return ", ".join(listed)
