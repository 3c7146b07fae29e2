"""The durable spool, as ``AsyncTracing`` sees it: start, sync, shut down, exit, fork.

The pieces: ``_spool_queue`` (the queue with the writer's inbox and the disk-only
counters), ``_spool_writer`` (the thread that does all disk I/O), ``_spool_part`` (one
tracer's locked directory of segments), ``_spool_format`` (records and CRCs) and
``_spool_replay`` (reading back, oldest first, in bounded pieces).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Sequence

from ._config import Config
from ._exceptions import TracingError
from ._flusher import Flusher
from ._log import logger
from ._models import Trace
from ._spool_queue import SpoolQueue
from ._spool_writer import SpoolWriter

__all__ = ["Spool"]


class Spool:
    """Glue between the client's lifecycle and the spool writer."""

    def __init__(
        self,
        config: Config,
        queue: SpoolQueue,
        flusher: Flusher,
        dropped: Callable[[Sequence[Trace]], None],
        report: Callable[[Exception, Sequence[Trace], str], None],
    ) -> None:
        assert config.spool_dir is not None
        self.path = config.spool_dir
        self._queue = queue
        self._flusher = flusher
        self._dropped = dropped
        self._report = report
        self._writer = SpoolWriter(config, queue, flusher.poke, dropped)
        queue.on_put = self._writer.ensure_started

    def __repr__(self) -> str:
        return f"<Spool {self._writer!r}>"

    @property
    def running(self) -> bool:
        return self._writer.running

    def start(self) -> None:
        self._queue.refilling = True
        self._writer.ensure_started()
        self._writer.lender.arm()

    def _memory_fallback(self) -> None:
        """No writer thread (it never started, or is gone): the inbox goes to memory."""
        group = self._queue.take_inbox()
        if group:
            _, dropped = self._queue.place(group, [None] * len(group), False)
            if dropped:
                self._dropped(dropped)

    async def _wait(self, future: concurrent.futures.Future[None], timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(asyncio.wrap_future(future))
        except TimeoutError:
            if timeout:
                logger.warning("tracing spool: the disk did not answer within %ss", timeout)
        if not self._writer.running:
            self._memory_fallback()

    async def sync(self, timeout: float | None = None) -> None:
        """Wait until what was queued before this call is written and in memory."""
        await self._wait(self._writer.request(), timeout)

    async def shutdown(self, timeout: float | None) -> None:
        """Write the inbox, let the flusher drain, then sync and release the parts.

        Traces the flusher could not deliver stay on disk (``spooled``), logged with a
        count: the next start with this ``spool_dir`` sends them.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self._queue.refilling = False  # the backlog on disk stays there for the next start
        await self.sync(_left(deadline))
        try:
            await self._flusher.shutdown(_left(deadline))
        finally:
            await self._wait(self._writer.request(close=True), _left(deadline, 1.0))
            self._settle_leftovers()
            self._log_kept()

    def deliver_at_exit(self, seconds: float) -> None:
        """At interpreter exit: write the inbox, one attempt to send, then release."""
        deadline = time.monotonic() + max(seconds, 0.0)
        self._queue.refilling = False
        self._block(self._writer.request(), deadline)
        try:
            self._flusher.deliver_at_exit(deadline - time.monotonic())
        finally:
            self._block(self._writer.request(close=True), deadline + 1.0)
            self._settle_leftovers()
            self._log_kept()

    def _block(self, future: concurrent.futures.Future[None], deadline: float) -> None:
        try:
            future.result(max(deadline - time.monotonic(), 0.0))
        except concurrent.futures.TimeoutError:
            logger.warning("tracing spool: the disk did not answer in time at exit")
        if not self._writer.running:
            self._memory_fallback()

    def _settle_leftovers(self) -> None:
        """After the last cycle nothing may stay in memory: traces the writer placed there
        after the sender stopped (no disk, or a timeout) are failed, as without a spool."""
        leftovers = self._queue.take(len(self._queue))
        lost = self._queue.give_up(leftovers) if leftovers else []
        if lost:
            self._report(TracingError("not delivered before shutdown ended"), lost, "shutdown")

    def _log_kept(self) -> None:
        kept = self._queue.spooled
        if kept:
            logger.warning(
                "tracing kept %d trace(s) in the spool at %s; the next start with this "
                "spool_dir delivers them",
                kept,
                self.path,
            )

    def after_fork(self) -> None:
        self._writer.after_fork()
        self._queue.on_put = self._writer.ensure_started


def _left(deadline: float | None, grace: float = 0.0) -> float | None:
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), 0.0) + grace
