"""``AsyncTracing``: configuration, lifecycle state and the public calls.

A thin façade: queueing lives in ``_queue``, batching in ``_flusher``, HTTP in
``_exporter``; ``send_batch()`` is in ``_client_direct``, reporting lost traces and the
process events (exit, fork) in ``_client_events``. Nothing here serialises or retries.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar, overload

import aiohttp

from . import _atexit
from ._client_direct import _DirectSending
from ._client_events import SPOOL_FULL, _ClientEvents, _State
from ._config import ErrorCallback, Mask, resolve_config
from ._exceptions import DeliveryError
from ._filters import apply_mask, sampled_in
from ._flusher import Flusher
from ._holds import Holds
from ._log import RateLimitedWarning, flush_never_ended, logger
from ._models import Stats, Trace, start_trace
from ._observe import make_decorator
from ._queue import TraceQueue
from ._spool import Spool
from ._spool_queue import SpoolQueue

__all__ = ["AsyncTracing"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_C = TypeVar("_C")
SPOOL_START_WAIT = 1.0  # seconds start() waits for the spool writer to open its part

_get_running_loop = asyncio._get_running_loop
# enqueue() compares the state up to three times per trace: a module global is read ~10x
# faster than an Enum member through its class (measured; benchmarks/README.md).
_NEW, _RUNNING, _STOPPING, _CLOSED = _State.NEW, _State.RUNNING, _State.STOPPING, _State.CLOSED
_OPEN = frozenset({_NEW, _RUNNING})  # states in which a held trace may wait (_holds)


class AsyncTracing(_DirectSending, _ClientEvents):
    """Collects traces and delivers them in the background, in batches.

    Construct it anywhere (no I/O, no event loop needed); it starts on ``start()``,
    ``async with``, or lazily at the first trace queued inside a running loop. Every
    argument is keyword-only; see the README for what each does and its default.

    Raises:
        ValueError: an argument is out of range; the message names it.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        publishable_key: str | None = None,
        flush_at: int = 20,
        flush_interval: float = 5.0,
        timeout: float = 15.0,
        max_retries: int = 2,
        max_batch_size: int = 100,
        max_queue_size: int = 10_000,
        max_concurrency: int = 4,
        rate_limit: float | None = None,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 30.0,
        compression: str | None = None,
        session: aiohttp.ClientSession | None = None,
        on_error: ErrorCallback | None = None,
        enabled: bool = True,
        sample_rate: float = 1.0,
        mask: Mask | None = None,
        protocol: str = "tracing",
        headers: Mapping[str, str] | None = None,
        service_name: str | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = 256 * 2**20,
        spool_fsync: str = "interval",
    ) -> None:
        self._config = config = resolve_config(
            endpoint=endpoint,
            publishable_key=publishable_key,
            flush_at=flush_at,
            flush_interval=flush_interval,
            timeout=timeout,
            max_retries=max_retries,
            max_batch_size=max_batch_size,
            max_queue_size=max_queue_size,
            max_concurrency=max_concurrency,
            rate_limit=rate_limit,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            compression=compression,
            session=session,
            on_error=on_error,
            enabled=enabled,
            sample_rate=sample_rate,
            mask=mask,
            protocol=protocol,
            headers=headers,
            service_name=service_name,
            spool_dir=spool_dir,
            spool_max_bytes=spool_max_bytes,
            spool_fsync=spool_fsync,
        )
        self._enabled = config.enabled
        self._flush_at = config.flush_at
        self._spool: Spool | None = None
        if config.spool_dir is not None and config.enabled:
            spooled = SpoolQueue(config.max_queue_size, swap=config.protocol == "tracing")
            self._queue: TraceQueue = spooled
            self._flusher = Flusher(config, spooled, self._report)
            self._spool = Spool(
                config, spooled, self._flusher, self._dropped_by_spool, self._report
            )
        else:
            self._queue = TraceQueue(config.max_queue_size)
            self._flusher = Flusher(config, self._queue, self._report)
        self._state = _State.NEW
        self._stopped: asyncio.Future[Stats] | None = None
        self._drops = RateLimitedWarning("tracing dropped %d trace(s)")
        self._holds = Holds()  # traces waiting for their streams (LLM calls)
        if config.enabled:
            _atexit.register(self)

    def __repr__(self) -> str:
        return (
            f"<AsyncTracing {self._config.endpoint} state={self._state.value} "
            f"queued={len(self._queue)} in_flight={self._queue.in_flight}>"
        )

    # Lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background flusher on the running loop. Idempotent."""
        if not self._enabled:
            return
        if self._state is _State.STOPPING and self._stopped is not None:
            await asyncio.shield(self._stopped)
        self._state = _State.RUNNING
        _atexit.register(self)
        self._flusher.ensure_started()
        if self._spool is not None:
            self._spool.start()
            # The writer opens its part now, while this loop waits, not in its first group
            # during a burst the caller may start at once: with the loop busy that group
            # took seconds (benchmarks/RESULTS.md, "Durable spool").
            await self._spool.sync(SPOOL_START_WAIT)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def shutdown(self, timeout: float | None = None) -> Stats:
        """Stop the timer, deliver what is queued and in flight, close an owned session.

        Idempotent, and never raises for delivery failures: every trace not delivered is
        counted in ``failed``, logged, and passed to ``on_error``; with a spool, those on
        disk stay there instead (``spooled``, logged with a count) for the next start.

        Args:
            timeout: seconds for the whole call; None lets every batch have its attempts.

        Returns:
            The final ``Stats``; ``queue_size`` and ``in_flight`` are 0.
        """
        if timeout is not None and (timeout != timeout or timeout < 0):
            raise ValueError(f"timeout must be None or a number >= 0, got {timeout!r}")
        if not self._enabled or self._state is _State.CLOSED:
            return self.stats()
        if self._state is _State.STOPPING and self._stopped is not None:
            return await asyncio.shield(self._stopped)
        self._queue_waiting()
        self._state = _State.STOPPING
        self._stopped = asyncio.get_running_loop().create_future()
        try:
            self._flusher.ensure_started()
            if self._spool is None:
                await self._flusher.shutdown(timeout)
            else:
                await self._spool.shutdown(timeout)
        finally:
            self._state = _State.CLOSED
            _atexit.release(self)
            self._drops.flush()
            flush_never_ended()
            stats = self.stats()
            self._stopped.set_result(stats)
        return stats

    # Tracing ---------------------------------------------------------------------------

    def trace(
        self,
        name: str,
        *,
        id: str | None = None,
        input: Any = None,
        description: str | None = None,
        input_summary: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> Trace:
        """Start a trace (its clock starts now); ``await trace.end()`` queues it.

        Use it as ``async with tracer.trace(name) as trace:`` to end it on exit and make
        it the current trace inside the block.
        """
        trace = start_trace(
            name,
            id,
            input,
            description,
            input_summary,
            metadata,
            tags,
        )
        if self._enabled:
            trace._tracer = self
        return trace

    @overload
    def observe(self, name: Callable[_P, _R], /) -> Callable[_P, _R]: ...

    @overload
    def observe(
        self,
        name: str | None = None,
        *,
        capture_input: bool = True,
        capture_output: bool = True,
    ) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]: ...

    def observe(
        self,
        name: str | Callable[_P, _R] | None = None,
        *,
        capture_input: bool = True,
        capture_output: bool = True,
    ) -> Callable[_P, _R] | Callable[[Callable[_P, _R]], Callable[_P, _R]]:
        """Decorate an async or sync function so that each call is traced.

        Outside any trace a call is a trace of its own; inside one it is a span of the
        current trace. ``@tracer.observe`` without parentheses works too.

        Args:
            name: the trace or span name; defaults to the function's ``__qualname__``.
            capture_input: record the bound arguments (defaults applied, no self/cls).
            capture_output: record the return value.

        Raises:
            ValueError: ``name`` is empty or not a string.
            TypeError: the function is a generator function.
        """
        if callable(name):
            return make_decorator(self, None, capture_input=True, capture_output=True)(name)
        return make_decorator(
            self, name, capture_input=capture_input, capture_output=capture_output
        )

    def instrument(self, client: _C, *, capture_content: bool = True) -> _C:
        """Make each API call of an OpenAI/Anthropic ``client`` a span; returns ``client``.

        Args:
            client: ``openai.OpenAI``/``AsyncOpenAI`` (Azure too), ``anthropic.Anthropic``/
                ``AsyncAnthropic``, or a subclass; instrumented in place (README).
            capture_content: record prompts and outputs; False: metadata and usage only.

        Raises:
            TypeError: ``client`` is not one of those clients.
        """
        from . import _llm  # loaded on first use: `import tracing` stays lean

        return _llm.instrument(self, client, capture_content=capture_content)

    def uninstrument(self, client: _C) -> _C:
        """Undo ``instrument()``; a client never instrumented is returned unchanged."""
        from . import _llm

        return _llm.uninstrument(client)

    def enqueue(self, trace: Trace) -> bool:
        """Queue a trace for delivery; synchronous, non-blocking, safe from any thread.

        A trace that was never ended is ended first.

        Returns:
            True if queued; False if it was dropped (queue full, shut down, disabled,
            sampled out) or was queued before.

        Raises:
            ValueError: ``trace`` is not a ``Trace``.
        """
        if not isinstance(trace, Trace):
            raise ValueError(f"trace must be a tracing.Trace, got {trace!r}")
        if not self._enabled or trace._queued:
            return False
        trace._queued = True
        config = self._config
        if config.sample_rate < 1.0 and not sampled_in(trace.id, config.sample_rate):
            return False
        if self._holds.held and self._state in _OPEN and self._holds.wait(trace):
            if not trace._ended:
                trace._finish()
            return True  # put in the queue when its last stream ends (_holds)
        if not trace._ended:
            trace._finish()
        if config.mask is not None:
            apply_mask(trace, config.mask)
        state = self._state
        if state is _CLOSED or state is _STOPPING:
            # Refused once shutdown() has begun: its drain must end (a steady producer
            # would otherwise keep it busy forever) and leave nothing queued behind it.
            self._queue.count_dropped()
            self._dropped(trace, "the tracer is shut down")
            return False
        flusher = self._flusher
        running = flusher.loop
        # While the flusher's loop runs (in this thread or another), ensure_started() would
        # do nothing, so the running-loop lookup is skipped: CPython's C
        # _get_running_loop() makes a getpid() system call on every call (its fork check),
        # measured at ~18 % of the loop's time in trace()+end() (benchmarks/README.md).
        if state is not _RUNNING or running is None or not running.is_running():
            loop = _get_running_loop()
            if loop is not None and (state is _NEW or loop is not running):
                self._state = _RUNNING if state is _NEW else state
                try:
                    flusher.ensure_started()
                except Exception:  # never into the host: the trace waits for the next start
                    logger.exception("tracing could not start its background flusher")
        if not self._queue.put(trace):
            self._dropped(trace, "the queue is full" if self._spool is None else SPOOL_FULL)
            return False
        # The deque's own length (what TraceQueue.__len__ returns), not len(self._queue):
        # a Python __len__ frame, ~800 instructions per trace queued (callgrind).
        if len(self._queue._items) >= self._flush_at:
            flusher.poke()
        return True

    async def flush(self) -> None:
        """Deliver everything queued now and wait for batches already in flight.

        Raises:
            DeliveryError: a batch still failed after its retries; its traces are back
                at the front of the queue (``requeued`` says how many).
        """
        if not self._enabled or self._state is _State.CLOSED:
            return
        if self._state is _State.NEW:
            self._state = _State.RUNNING
        self._flusher.ensure_started()
        if self._spool is not None:
            self._spool.start()
            await self._spool.sync()  # what enqueue() accepted is written, then sent
        requeued = await self._flusher.flush()
        if requeued:
            raise DeliveryError(
                f"{requeued} trace(s) could not be delivered and went back to the queue",
                requeued=requeued,
            ) from self._flusher.last_error

    def stats(self) -> Stats:
        """The counters now; see ``Stats``."""
        return self._queue.snapshot()
