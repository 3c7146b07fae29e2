"""A graceful stop for ``asyncio.run()`` workers.

On SIGTERM or SIGINT the worker stops taking work, finishes (or, if asked, abandons) the
job it is on, and delivers every trace it completed before the process exits, within
``timeout``::

    async def consume(stop: Stop) -> None:
        async for job in stop.take(queue.get):
            await handle(job)          # decorated with @tracer.observe()

    sys.exit(asyncio.run(run_worker(consume, tracer=tracer)))

The exit code is 0 when ``main`` returns or the worker stops on a signal, in either
mode; an exception from ``main`` propagates (after the traces are delivered), so
``asyncio.run()`` exits with 1 and a traceback.
"""

from __future__ import annotations

import asyncio
import signal as _signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

from .._client import AsyncTracing
from .._log import logger

__all__ = ["Stop", "run_worker"]

_T = TypeVar("_T")
DEFAULT_SIGNALS = (_signal.SIGTERM, _signal.SIGINT)


class Stop:
    """Set once a stop was asked for (a signal arrived, or ``set()`` was called).

    The worker checks it between jobs; ``take()`` turns a "get the next job" call into a
    loop that ends when the stop comes, even while it waits for a job.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.signal: _signal.Signals | None = None

    def __repr__(self) -> str:
        name = self.signal.name if self.signal is not None else None
        return f"<Stop requested={self.requested} signal={name}>"

    @property
    def requested(self) -> bool:
        """Whether the worker should stop taking work."""
        return self._event.is_set()

    def set(self, signal: _signal.Signals | None = None) -> None:
        """Ask the worker to stop (what a signal does)."""
        if not self._event.is_set():
            self.signal = signal
            self._event.set()

    async def wait(self) -> None:
        """Return once a stop was asked for."""
        await self._event.wait()

    async def take(self, get: Callable[[], Awaitable[_T]]) -> AsyncIterator[_T]:
        """Yield ``await get()`` again and again until a stop is asked for.

        A stop that comes while ``get()`` waits cancels that wait (``asyncio.Queue.get``
        loses nothing when cancelled); a job that ``get()`` had already returned is
        still yielded, so nothing taken is dropped.
        """
        while not self.requested:
            getting = asyncio.ensure_future(get())
            stopping = asyncio.ensure_future(self._event.wait())
            try:
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                getting.cancel()  # no-op if it is done
                # wait() neither raises their errors nor swallows our own cancellation.
                await asyncio.wait({getting, stopping})
            if getting.cancelled():
                return
            yield getting.result()


async def run_worker(
    main: Callable[[Stop], Awaitable[object]],
    *,
    tracer: AsyncTracing,
    abandon: bool = False,
    grace: float | None = None,
    timeout: float | None = 10.0,
    signals: Iterable[_signal.Signals] = DEFAULT_SIGNALS,
) -> int:
    """Run ``main(stop)`` with ``tracer`` started, until it returns or a signal stops it.

    On the first of ``signals``: ``stop`` is set, so ``main`` takes no new work. With
    ``abandon=False`` the job in progress runs to its end (at most ``grace`` seconds
    when given); with ``abandon=True`` ``main`` is cancelled at once, and a decorated
    job records the cancellation as an error. A second signal abandons in any mode.
    Then ``tracer.shutdown(timeout)`` delivers every completed trace.

    Args:
        main: the worker's loop; it gets the ``Stop`` to watch.
        tracer: the ``AsyncTracing`` to start now and shut down at the end.
        abandon: cancel the job in progress instead of letting it finish.
        grace: seconds a job in progress may still run after the signal; None: no limit.
        timeout: seconds ``shutdown()`` may take to deliver; None: every batch gets its
            retries.
        signals: what stops the worker; handlers are installed on the running loop
            (main thread, Unix) and removed on return.

    Returns:
        The process exit code: 0 (``main`` returned, or the worker stopped on a signal).

    Raises:
        Exception: whatever ``main`` raised, once the traces are delivered.
    """
    loop = asyncio.get_running_loop()
    stop = Stop()
    await tracer.start()
    task = asyncio.ensure_future(main(stop))
    timers: list[asyncio.TimerHandle] = []

    def on_signal(sig: _signal.Signals) -> None:
        if stop.requested or abandon:
            task.cancel()
        elif grace is not None:
            timers.append(loop.call_later(grace, task.cancel))
        logger.info("tracing worker: %s received, stopping", sig.name)
        stop.set(sig)

    installed = _install(loop, signals, on_signal)
    try:
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we were cancelled ourselves, not only the job
        return 0
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        for timer in timers:
            timer.cancel()
        if not task.done():  # we are being cancelled ourselves: take the job down too
            task.cancel()
            await asyncio.wait({task})
        await tracer.shutdown(timeout)


def _install(
    loop: asyncio.AbstractEventLoop,
    signals: Iterable[_signal.Signals],
    handler: Callable[[_signal.Signals], None],
) -> list[_signal.Signals]:
    installed = []
    for sig in signals:
        try:
            loop.add_signal_handler(sig, handler, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            # Windows, or not the main thread: the worker still runs, without the handler.
            logger.warning("tracing worker: cannot handle %s here", sig.name)
            continue
        installed.append(sig)
    return installed
