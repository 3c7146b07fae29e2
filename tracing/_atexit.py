"""Last-chance delivery at interpreter exit, and a clean slate in forked children.

Every live ``AsyncTracing`` registers here. At exit, tracers that still hold traces get
one attempt each, with no retries, on a fresh event loop (the application's loop is
usually closed by then), all within one shared deadline: the longest ``timeout`` of
them, counted from the moment the interpreter starts exiting.
"""

from __future__ import annotations

import atexit
import os
import time
import weakref
from typing import TYPE_CHECKING

from ._log import logger

if TYPE_CHECKING:
    from ._client import AsyncTracing

__all__ = ["register", "release"]

# Every tracer, for the fork reset; weak, so closed tracers can be collected.
_tracers: weakref.WeakSet[AsyncTracing] = weakref.WeakSet()
# Tracers not shut down yet, held strongly: a tracer the application dropped without
# shutdown() may still hold traces, and exit delivery must still find it.
_open: set[AsyncTracing] = set()


def register(tracer: AsyncTracing) -> None:
    """A tracer that is open (new or started): keep it until it is shut down."""
    _tracers.add(tracer)
    _open.add(tracer)


def release(tracer: AsyncTracing) -> None:
    """A tracer that shut down: nothing left for exit delivery."""
    _open.discard(tracer)


def _deliver_all() -> None:
    tracers = [t for t in list(_open) if t._needs_exit_delivery()]
    if not tracers:
        return
    deadline = time.monotonic() + max(t._config.timeout for t in tracers)
    for tracer in tracers:
        try:
            tracer._deliver_at_exit(deadline - time.monotonic())
        except Exception:  # never let one tracer's failure stop the others or the exit
            logger.exception("tracing could not deliver queued traces at exit")


def _after_fork_in_child() -> None:
    for tracer in list(_tracers):
        tracer._after_fork()


atexit.register(_deliver_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
