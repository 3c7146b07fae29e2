"""Traces that wait for the streams started in them before they are queued.

An LLM call streamed inside a trace often outlives the block that made it: a function
under ``@tracer.observe()`` returns the stream and its caller reads it, a FastAPI
endpoint hands it to a ``StreamingResponse``. Queued when the block ends, the trace
would be sent (or at least encoded) before the stream's text, usage and end exist, and
the span would say "ok" with none of them. So a streamed call holds its trace from the
moment its stream is handed out until it ends (exhausted, closed, failed, or dropped
unread); a trace ended or enqueued while held waits here, and is queued when the last
of its streams ends, with everything they recorded (its end time stretched to theirs).
``shutdown()`` (and the exit's delivery) queues every waiting trace first, with its
streams as they are then. A trace never ended is not this module's concern.

Nothing here runs for a trace with no stream: ``enqueue()`` looks at one attribute of
an empty dict.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import Trace

__all__ = ["Holds"]


class _Entry:
    __slots__ = ("streams", "trace", "waiting")

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.streams = 0
        self.waiting = False


class Holds:
    """Per tracer: the traces held by streams, by ``id()`` (a ``Trace`` is not hashable)."""

    def __init__(self) -> None:
        self.held: dict[int, _Entry] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Holds held={len(self.held)}>"

    def _entry(self, trace: Trace) -> _Entry | None:
        entry = self.held.get(id(trace))
        return entry if entry is not None and entry.trace is trace else None

    def hold(self, trace: Trace) -> None:
        """A stream of ``trace``'s was handed out: the trace waits for its end."""
        with self._lock:
            entry = self._entry(trace)
            if entry is None:
                entry = self.held[id(trace)] = _Entry(trace)
            entry.streams += 1

    def wait(self, trace: Trace) -> bool:
        """``trace`` is being queued: True when a stream holds it (it waits here)."""
        with self._lock:
            entry = self._entry(trace)
            if entry is None:
                return False
            entry.waiting = True
            return True

    def release(self, trace: Trace) -> bool:
        """One of ``trace``'s streams ended: True when it was the last and the trace is
        waiting (the caller queues it now)."""
        with self._lock:
            entry = self._entry(trace)
            if entry is None:
                return False
            entry.streams -= 1
            if entry.streams > 0:
                return False
            del self.held[id(trace)]
            return entry.waiting

    def drain(self) -> list[Trace]:
        """Every waiting trace, let go (shutdown, exit); held ones not ended stay."""
        with self._lock:
            waiting = [key for key, entry in self.held.items() if entry.waiting]
            return [self.held.pop(key).trace for key in waiting]

    def after_fork(self) -> None:
        self.held = {}
        self._lock = threading.Lock()
