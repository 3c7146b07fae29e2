"""What ``AsyncTracing`` does when traces are lost, at interpreter exit and after fork.

A mixin of ``AsyncTracing`` (``_client``), with its lifecycle states: reporting traces
that will not be delivered (log + ``on_error``), and the process events ``_atexit``
forwards to every open tracer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._config import Config
from ._exceptions import TracingError
from ._flusher import Flusher
from ._holds import Holds
from ._log import RateLimitedWarning, ids, logger
from ._models import Stats, Trace, _streaming
from ._queue import TraceQueue
from ._spool import Spool
from ._spool_stub import for_user

__all__ = ["_ClientEvents", "_State"]


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSED = "closed"


SPOOL_FULL = "memory was full and the spool could not take it"  # a drop's reason


def _stretch(trace: Trace) -> None:
    """A trace queued after its streams: its end stretched to its latest span's."""
    try:
        ends = [span.end_time for span in trace.spans if span.end_time is not None]
        if ends and trace.end_time is not None and max(ends) > trace.end_time:
            trace.end_time = max(ends)
    except Exception:  # never into the stream's consumer
        logger.exception("tracing could not read a streamed trace's spans")


class _ClientEvents:
    """Reporting and process events of ``AsyncTracing``; its ``__init__`` sets these."""

    _config: Config
    _queue: TraceQueue
    _flusher: Flusher
    _spool: Spool | None
    _drops: RateLimitedWarning
    _holds: Holds
    _state: _State
    _stopped: asyncio.Future[Stats] | None

    # Reporting -------------------------------------------------------------------------

    def _dropped_by_spool(self, traces: Sequence[Trace]) -> None:
        self._drops.hit(len(traces), reason=SPOOL_FULL)
        self._call_on_error(TracingError(f"trace dropped: {SPOOL_FULL}"), traces)

    def _dropped(self, trace: Trace, reason: str) -> None:
        self._drops.hit(reason=reason)
        self._call_on_error(TracingError(f"trace dropped: {reason}"), [trace])

    def _report(self, exc: Exception, traces: Sequence[Trace], reason: str) -> None:
        """Log and hand to ``on_error`` traces that will not be delivered."""
        logger.warning(
            "tracing failed to deliver %d trace(s) (%s: %s): %s",
            len(traces),
            reason,
            exc,
            ids(traces),
        )
        self._call_on_error(exc, traces)

    def _call_on_error(self, exc: Exception, traces: Sequence[Trace]) -> None:
        callback = self._config.on_error
        if callback is None:
            return
        try:
            callback(exc, for_user(traces))
        except Exception:
            logger.exception("tracing on_error callback raised")

    # Traces waiting for their streams (see _holds) ----------------------------------

    def _release(self, trace: Trace) -> None:
        """One of ``trace``'s streams ended; the last queues the trace if it waits, its
        end stretched to its spans' (the stream was read after the block ended)."""
        if self._holds.release(trace):
            self._queue_held(trace)

    def _queue_waiting(self) -> None:
        """Shutdown or exit: every trace still waiting for a stream is queued now, each
        stream still unread ended as it is (``stream_incomplete: "shutdown"``)."""
        for trace in self._holds.drain():
            for span in trace.spans:
                if _streaming(span):
                    span._llm.finish(incomplete="shutdown")  # type: ignore[attr-defined]
            self._queue_held(trace)

    def _queue_held(self, trace: Trace) -> None:
        """Queue a trace let go by its streams: ``enqueue()`` marked it queued when it
        began to wait, and queues it now, its end stretched to its spans'."""
        _stretch(trace)
        trace._queued = False
        self.enqueue(trace)

    if TYPE_CHECKING:

        def enqueue(self, trace: Trace) -> bool: ...  # AsyncTracing's

    # Process events (see _atexit) ------------------------------------------------------

    def _needs_exit_delivery(self) -> bool:
        return self._state is not _State.CLOSED and (
            bool(self._holds.held)
            or len(self._queue) > 0
            or self._queue.in_flight > 0
            or (self._spool is not None and self._spool.running)
        )

    def _deliver_at_exit(self, seconds: float) -> None:
        loop = self._flusher.loop
        if loop is not None and loop.is_running():
            self._shut_down_on(loop, seconds)  # its loop still runs, in another thread
            return
        self._queue_waiting()
        self._state = _State.CLOSED
        if self._spool is not None:
            self._spool.deliver_at_exit(seconds)
        else:
            self._flusher.deliver_at_exit(seconds)
        self._drops.flush()

    def _shut_down_on(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        """At exit, the tracer's loop still runs in another thread (a daemon thread, which
        dies with the interpreter): the attempt is ``shutdown(timeout=seconds)`` on that
        loop, waited for from here; what it cannot deliver it reports."""
        budget = max(seconds, 0.0)
        future = asyncio.run_coroutine_threadsafe(self.shutdown(budget), loop)
        try:
            future.result(budget + 1.0)  # shutdown() ends within its timeout; 1 s to start
        except concurrent.futures.TimeoutError:  # that loop is blocked
            future.cancel()
            logger.warning("tracing: the tracer's event loop did not run its shutdown at exit")

    if TYPE_CHECKING:

        async def shutdown(self, timeout: float | None = None) -> Stats: ...  # AsyncTracing's

    def _after_fork(self) -> None:
        self._holds.after_fork()
        self._queue.after_fork()
        self._flusher.after_fork()
        if self._spool is not None:
            self._spool.after_fork()
        self._drops = RateLimitedWarning(self._drops.message)
        self._state = _State.NEW
        self._stopped = None
