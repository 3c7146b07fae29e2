"""The background task that turns queued traces into batches and sends them.

It wakes when the queue reaches ``flush_at``, when ``flush_interval`` fires, or on
``shutdown()``; takes what is queued in batches of ``max_batch_size``; and keeps at most
``max_concurrency`` batches in flight. A batch that still fails after its retries goes
back to the front of the queue and the flusher rests (doubling from ``retry_backoff`` up
to ``retry_backoff_max``) before its next round, so an outage neither spins nor loses what
fits in the queue. When stopping, such a batch is counted as failed instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ._config import Config
from ._exceptions import TracingError
from ._exporter import Exporter, Outcome
from ._log import logger
from ._models import Trace
from ._queue import TraceQueue
from ._retry import outage_delay

__all__ = ["Flusher", "Report"]

Report = Callable[[Exception, Sequence[Trace], str], None]


class Flusher:
    """Owns the flusher task and everything bound to its event loop.

    Loop-bound objects (events, the exporter with its session, semaphore and limiter, the
    tasks) are made in ``ensure_started()`` on the running loop and made again when a
    later ``asyncio.run()`` brings a new loop.
    """

    def __init__(self, config: Config, queue: TraceQueue, report: Report) -> None:
        self._config = config
        self._queue = queue
        self._report = report
        self._reset()

    def _reset(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._poke_pending = False
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._exporter: Exporter | None = None
        # Send tasks and the batch each carries, until settled. One cancelled before it
        # ran (asyncio.run() ending) or whose loop died leaves its batch here, put back.
        self._taken: dict[asyncio.Task[int], list[Trace]] = {}
        self._stopping = False
        self._last_error: Exception | None = None

    def after_fork(self) -> None:
        """Drop the parent's loop, tasks and session: the child starts clean."""
        self._reset()

    def __repr__(self) -> str:
        running = self._task is not None and not self._task.done()
        return (
            f"<Flusher running={running} stopping={self._stopping} "
            f"sends_in_flight={len(self._sends)}>"
        )

    @property
    def exporter(self) -> Exporter:
        assert self._exporter is not None, "ensure_started() first"
        return self._exporter

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def ensure_started(self) -> None:
        """Start the flusher task on the running loop, unless it already runs there."""
        loop = asyncio.get_running_loop()
        if loop is self.loop and self.running:
            return
        if loop is not self.loop:
            old = self.loop
            if old is not None and old.is_running():
                # Another live loop (in another thread) owns this tracer: keep it there.
                return
            self._abandon_tasks(old)
            self.loop = loop
            self._thread = threading.get_ident()
            self._exporter = Exporter(self._config)
        self._stopping = False
        self._poke_pending = False
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = loop.create_task(self._run(), name="tracing-flusher")
        self._task.add_done_callback(self._on_task_done)

    def _abandon_tasks(self, old: asyncio.AbstractEventLoop | None) -> None:
        """Leave the tasks of a loop we are moving away from; their batches are put back."""
        tasks: list[asyncio.Task[Any]] = [*self._taken]
        if self._task is not None:
            tasks.append(self._task)
        self._put_back_taken()  # first: nothing below may settle those batches
        for task in tasks:
            if task.done():
                continue
            if old is None or not old.is_closed():
                # A stopped loop could run again: its task must not compete with ours.
                task.cancel()
                continue
            # A closed loop never runs these again: close their coroutines now, at a known
            # moment, not whenever the garbage collector finds them (aiohttp's clean-up
            # raises on the dead loop as they unwind; _send absorbs it). And say so to
            # asyncio: no "Task was destroyed but it is pending!".
            task._log_destroy_pending = False  # type: ignore[attr-defined]
            with contextlib.suppress(RuntimeError):  # it awaited while unwinding
                task.get_coro().close()

    def poke(self) -> None:
        """Wake the flusher; safe from any thread."""
        wake = self._wake
        # Already set: nothing to do. Safe across threads: _wait() re-checks the queue
        # after clearing, so a trace queued before this read is never missed.
        if wake is None or wake.is_set():
            return
        if threading.get_ident() == self._thread:
            wake.set()
        elif self.loop is not None and not self._poke_pending:
            # One hand-off at a time: a busy producer thread would otherwise queue a
            # callback (and a self-pipe write) per trace until the loop gets to them.
            self._poke_pending = True
            try:
                self.loop.call_soon_threadsafe(self._poked, wake)
            except RuntimeError:  # the loop is closed: exit delivery sends
                self._poke_pending = False

    def _poked(self, wake: asyncio.Event) -> None:
        self._poke_pending = False
        wake.set()

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("tracing flusher crashed; restarting it in 1 s", exc_info=exc)
            if not self._stopping:
                task.get_loop().call_later(1.0, self._restart_after_crash, task)

    def _restart_after_crash(self, crashed: asyncio.Task[None]) -> None:
        if self._task is crashed and not self._stopping:
            self.ensure_started()

    def _put_back_taken(self) -> None:
        for batch in self._taken.values():
            self._queue.requeue(batch)
        self._taken.clear()

    @property
    def _sends(self) -> set[asyncio.Task[int]]:
        return set(self._taken)

    async def _run(self) -> None:
        exporter = self.exporter  # closed at the end: the one this task started with
        failures = 0
        try:
            while not self._stopping:
                await self._wait()
                if self._stopping:
                    break
                if await self._send_queued() == 0:
                    failures = 0
                else:
                    failures += 1
                    await self._rest(failures)
            await self._drain()
        except GeneratorExit:
            # Closed by _abandon_tasks, its loop closed by hand: nothing can be awaited.
            raise
        except BaseException:
            await exporter.close()
            raise
        await exporter.close()

    async def _wait(self) -> None:
        """Return when ``flush_at`` traces are queued, the interval fires, or on stop."""
        queue, wake, flush_at = self._queue, self._wake, self._config.flush_at
        assert wake is not None
        if len(queue) >= flush_at:
            return
        wake.clear()
        if len(queue) >= flush_at or self._stopping:
            return
        interval = self._config.flush_interval
        if interval > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await wake.wait()
        else:
            await wake.wait()

    async def _rest(self, failures: int) -> None:
        """After a failed round: wait before the next one, unless asked to stop."""
        config, stop = self._config, self._stop
        assert stop is not None
        delay = outage_delay(failures, config.retry_backoff, config.retry_backoff_max)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()

    async def _send_queued(self) -> int:
        """Send what is queued now, ``max_concurrency`` batches at a time.

        Returns how many traces went back to the queue; after the first such batch no
        new batch is started (an outage fails them all alike).
        """
        queue, config = self._queue, self._config
        remaining = len(queue)
        window: set[asyncio.Task[int]] = set()
        requeued = 0
        while remaining > 0 and requeued == 0:
            if len(window) >= config.max_concurrency:
                done, window = await asyncio.wait(window, return_when=asyncio.FIRST_COMPLETED)
                requeued += _requeued_by(done)
                if requeued:
                    break
            batch = queue.take(min(remaining, config.max_batch_size))
            if not batch:
                break
            remaining -= len(batch)
            window.add(self._spawn(batch))
        if window:
            # Cancelled with the caller; not by a send's own cancellation (shutdown).
            await asyncio.gather(*window, return_exceptions=True)
            requeued += _requeued_by(window)
        return requeued

    def _spawn(self, batch: list[Trace]) -> asyncio.Task[int]:
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._taken[task] = batch
        task.add_done_callback(self._on_send_done)
        return task

    def _on_send_done(self, task: asyncio.Task[int]) -> None:
        batch = self._taken.pop(task, None)
        if batch is None:  # settled by _send, or already put back
            return
        if self._stopping:
            self._fail(batch, TracingError("cancelled before delivery"), "cancelled")
        else:
            self._queue.requeue(batch)

    async def _send(self, batch: list[Trace]) -> int:
        """Deliver one taken batch and settle its traces; return how many were requeued.

        Cancellation leaves the batch to ``_on_send_done``.
        """
        # Its own task, taken at its first step: it may settle run by something else.
        task = asyncio.current_task()
        assert task is not None
        try:
            outcome = await self.exporter.deliver(batch, self._queue.count)
        except Exception as exc:  # a bug in the SDK: count and report, never lose silently
            if self._release(task, batch):
                logger.exception("tracing failed to send a batch of %d trace(s)", len(batch))
                self._fail(batch, exc, "internal error")
            return 0
        return self._settle(outcome) if self._release(task, batch) else 0

    def _release(self, task: asyncio.Task[Any], batch: list[Trace]) -> bool:
        """Claim the batch ``task`` carries for settling; False if it was already put back.

        By the send's own task, never ``asyncio.current_task()``: a dead loop's send,
        finalised while a task of the next loop runs, would take that task's batch.
        """
        if self._taken.get(task) is not batch:
            return False
        del self._taken[task]
        return True

    def _settle(self, outcome: Outcome) -> int:
        delivered, rejected = outcome.delivered(), outcome.rejected()
        self._queue.answered(delivered, rejected)
        by_message: dict[tuple[str, bool], list[Trace]] = {}
        for trace, response in rejected:
            # No status: refused before sending (it cannot be encoded), not by the server.
            key = (response.message, response.status is None)
            by_message.setdefault(key, []).append(trace)
        for (message, unsent), traces in by_message.items():
            reason = "never sent" if unsent else "rejected by the collector"
            self._report(TracingError(message), traces, reason)
        unanswered = outcome.unanswered()
        if not unanswered:
            return 0
        error = outcome.error or TracingError("no answer")
        self._last_error = error
        if self._stopping:
            self._fail(unanswered, error, "no answer after retries")
            return 0
        self._queue.requeue(unanswered)
        logger.warning(
            "tracing could not deliver %d trace(s), requeued them: %s", len(unanswered), error
        )
        return len(unanswered)

    def _fail(self, traces: Sequence[Trace], exc: Exception, reason: str) -> None:
        lost = self._queue.give_up(traces)  # a spool keeps on disk what it holds there
        if lost:
            self._report(exc, lost, reason)

    async def _drain(self) -> None:
        """Final round when stopping: send everything, wait for every batch in flight."""
        while True:
            if len(self._queue):
                await self._send_queued()
            if self._sends:
                await asyncio.wait(set(self._sends))
            if not len(self._queue) and not self._sends:
                return

    async def flush(self) -> int:
        """Send everything queued now and wait for batches in flight; return how many
        traces went back to the queue."""
        earlier = set(self._sends)
        requeued = await self._send_queued()
        others = earlier | self._sends
        if others:
            await asyncio.wait(others)
            requeued += sum(
                task.result() for task in others if not task.cancelled() and not task.exception()
            )
        return requeued

    @property
    def last_error(self) -> Exception | None:
        return self._last_error

    async def shutdown(self, timeout: float | None) -> None:
        """Stop the timer, drain, and close the session; bounded by ``timeout`` in all."""
        task, stop, wake = self._task, self._stop, self._wake
        assert task is not None
        assert stop is not None
        assert wake is not None
        self._stopping = True
        stop.set()
        wake.set()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(task)
        except TimeoutError:
            await self._cancel_everything()
        except Exception:
            logger.exception("tracing flusher failed while draining")
        finally:
            self._fail_leftovers(TracingError("not delivered before shutdown ended"))
            await self.exporter.close()

    async def _cancel_everything(self) -> None:
        tasks: set[asyncio.Task[None] | asyncio.Task[int]] = {*self._sends}
        if self._task is not None:
            tasks.add(self._task)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _fail_leftovers(self, exc: Exception) -> None:
        self._put_back_taken()
        leftovers = self._queue.take(len(self._queue))
        if leftovers:
            self._fail(leftovers, exc, "shutdown")

    def deliver_at_exit(self, seconds: float) -> None:
        """One bounded attempt, with no retries, on a fresh loop (the app's is gone)."""
        self._put_back_taken()
        if not len(self._queue) or seconds <= 0:
            self._fail_leftovers(TracingError("process exited before delivery"))
            return
        self._stopping = True
        self._exporter = Exporter(attrs.evolve(self._config, max_retries=0, session=None))
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._last_chance(seconds))
        finally:
            loop.close()

    async def _last_chance(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._send_queued()
        except TimeoutError:
            pass
        finally:
            self._fail_leftovers(TracingError("process exited before delivery"))
            await self.exporter.close()


def _requeued_by(sends: set[asyncio.Task[int]]) -> int:
    """How many traces finished sends put back. One cancelled (by ``shutdown()``, which
    settles its batch) counts none; a crash in one (a BaseException) is raised."""
    return sum(task.result() for task in sends if not task.cancelled())
