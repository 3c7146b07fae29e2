"""Lending the GIL to the spool writer when a busy event loop starves it.

CPython gives the GIL to a waiting thread only when its holder has kept it for a whole
switch interval (5 ms) without a switch. An event loop releases and retakes the GIL
around every system call (each ``select()``, each socket send), which counts as a switch
and restarts that clock, and it retakes the GIL before the woken writer thread can run
(bpo-7946, "the convoy effect"). So while the loop is busy, the writer's
return from a ``write()`` or from its timed wait can take seconds. Measured here with
``trace()+end()`` flat out (150,000 traces at ~50,000/s): the first group of a burst came
0.4-0.6 s after the burst began, one ``write()`` of it returned after 1.3 s, and one group
held 40,000 traces, where the writer promises a group at least every 50 ms (and the
crash guarantee counts on it: a trace is safe once its group is written).

The fix is on the loop's side, as only the loop can give the GIL away: the writer stamps
``wants`` with the time from which it needs the GIL (its next group's time while it
waits, "now" while it works), and a timer on the loop, every ``TICK``, sleeps ``LEND``
seconds when the writer has wanted the GIL for longer than ``LATE``. ``time.sleep()``
releases the GIL without retaking it at once, so the writer runs, up to its next system
call or the next switch interval. The cost is at most ``LEND`` per ``TICK`` (4 %) while
the writer is late or inside a long system call (``fsync`` with "always"), and nothing
while it keeps up.

The timer runs only while it is needed: ``arm()`` (called as traces come and as batches
are answered) starts it on the running loop, and it stops itself after ``IDLE_TICKS``
ticks in which the writer was never late.
"""

from __future__ import annotations

import asyncio
import math
import time

__all__ = ["Lender"]

TICK = 0.005  # seconds between the loop's looks at the writer
LATE = 0.005  # how long the writer may want the GIL before the loop lends it
LEND = 0.0002  # how long the loop lets go of it
IDLE_TICKS = 40  # ticks without a late writer after which the timer stops (re-armed by use)


class Lender:
    """The writer's GIL clock, and the loop's timer that lends it the GIL."""

    def __init__(self) -> None:
        self.wants = math.inf  # set by the writer thread: when it next needs the GIL
        self.lent = 0  # how many times the loop let go of the GIL (for tests and stats)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle = 0

    def __repr__(self) -> str:
        return f"<Lender armed={self._loop is not None} lent={self.lent}>"

    def arm(self) -> None:
        """Start the timer on the running event loop, unless it already runs there."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._idle = 0
        if loop is self._loop:
            return
        self._loop = loop
        loop.call_later(TICK, self._tick, loop)

    def disarm(self) -> None:
        """Stop the timer at its next tick (shutdown, fork)."""
        self._loop = None
        self.wants = math.inf

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return  # disarmed, or armed on another loop since
        if time.monotonic() - self.wants > LATE:
            self.lent += 1
            self._idle = 0
            time.sleep(LEND)  # lets the writer take the GIL
        else:
            self._idle += 1
            if self._idle >= IDLE_TICKS:
                self._loop = None
                return
        loop.call_later(TICK, self._tick, loop)
