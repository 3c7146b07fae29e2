"""The instrumentation's own work, timed without the SDK around it.

``begin()`` + reading the response + ``finish()`` for one recorded request, and the
per-chunk work of the watching generator over recorded stream chunks, each against a
bare loop doing nothing but the same iteration. Inputs come from real calls of the real
clients against ``examples/_fake_llm.py`` (``recorded()``)."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from tracing import AsyncTracing
from tracing._llm import _hook, _streams
from tracing._llm._hook import STATE
from tracing._wire import encode_batch

__all__ = [
    "per_async_chunk_us",
    "per_call_after_us",
    "per_call_cold_us",
    "per_call_us",
    "per_chunk_us",
    "recorded",
    "written_out_us",
]


def recorded(client: Any, make_call: Callable[[Any], Any]) -> tuple[Any, Any, list[Any]]:
    """(options, returned value, chunks) of one call: the request() arguments the SDK
    passed, what request() returned, and the items a stream yielded."""
    seen: dict[str, Any] = {}
    original = client.request

    def grab(cast_to: Any, options: Any, **kwargs: Any) -> Any:
        value = original(cast_to, options, **kwargs)
        seen["options"], seen["value"] = options, value
        return value

    client.request = grab
    result = make_call(client)
    del client.request
    chunks = list(result) if seen["options"].json_data.get("stream") is True else []
    return seen["options"], seen["value"], chunks


def _best(fn: Callable[[], None], n: int, repeat: int = 9) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        began = time.process_time()
        for _ in range(n):
            fn()
        times.append((time.process_time() - began) / n)
    return min(times)


def per_call_us(tracer: AsyncTracing, client: Any, options: Any, value: Any) -> float:
    """Microseconds of begin() + reading ``value`` + finish() (trace queued), per call."""
    tracer.instrument(client)
    inst = client.__dict__[STATE]

    def one() -> None:
        call = inst.begin(options, False)
        assert call is not None
        _hook._observe(call, value, False)

    def drained() -> None:
        for _ in range(50):
            one()
        tracer._queue.settle(sent=len(tracer._queue.take(10**9)))

    return _best(drained, 20) / 50 * 1e6


def per_call_cold_us(
    tracer: AsyncTracing, client: Any, options: Any, value: Any, evict: int = 2 * 2**20
) -> float:
    """``per_call_us`` with the CPU caches cold: each call follows a copy of ``evict``
    bytes (C ``memcpy``, no Python work), timed one call at a time (median of 2,000, the
    clock's own cost taken out). What a whole call through an SDK sees (RESULTS.md)."""
    source, target = bytearray(evict), bytearray(evict)

    def copy() -> None:
        target[:] = source

    return _each_after(tracer, client, options, value, copy, 2000)


def per_call_after_us(
    tracer: AsyncTracing, client: Any, options: Any, value: Any, between: Callable[[], object]
) -> float:
    """``per_call_us`` with each call right after ``between()`` (a plain SDK call: the
    state a real call leaves the CPU in), timed one call at a time, median of 1,000,
    against the clock's own cost after the same ``between()``; the collector off, so
    that only the path's own code is timed. The same instructions as ``per_call_us``."""
    gc.collect()
    gc.disable()
    try:
        return _each_after(tracer, client, options, value, between, 1000)
    finally:
        gc.enable()


def _each_after(
    tracer: AsyncTracing,
    client: Any,
    options: Any,
    value: Any,
    between: Callable[[], object],
    rounds: int,
) -> float:
    """The median microseconds of one instrumented call made right after ``between()``,
    less the median of the clock alone after the same ``between()``."""
    tracer.instrument(client)
    inst = client.__dict__[STATE]
    clock = time.process_time
    spent: list[float] = []
    idle: list[float] = []
    for index in range(rounds):
        between()
        began = clock()
        call = inst.begin(options, False)
        assert call is not None
        _hook._observe(call, value, False)
        spent.append(clock() - began)
        between()
        began = clock()
        idle.append(clock() - began)
        if index % 200 == 199:
            tracer._queue.settle(sent=len(tracer._queue.take(10**9)))
    tracer._queue.settle(sent=len(tracer._queue.take(10**9)))
    return (statistics.median(spent) - statistics.median(idle)) * 1e6


def per_chunk_us(tracer: AsyncTracing, client: Any, options: Any, chunks: list[Any]) -> float:
    """Microseconds the watching generator adds per chunk, against a bare iteration."""
    tracer.instrument(client)
    inst = client.__dict__[STATE]

    def bare() -> None:
        for _ in iter(chunks):
            pass

    def watched() -> None:
        call = inst.begin(options, True)
        assert call is not None
        watch = _streams._Watch(call, call.endpoint.stream(call))
        reader: Iterator[Any] = _streams.sync_reader(iter(chunks), watch)
        for _ in reader:
            pass

    def empty() -> None:  # the per-stream part, to take out of the per-chunk figure
        call = inst.begin(options, True)
        assert call is not None
        watch = _streams._Watch(call, call.endpoint.stream(call))
        for _ in _streams.sync_reader(iter(()), watch):
            pass

    n = 50
    spent = _best(watched, n) - _best(empty, n) - _best(bare, n)
    tracer._queue.settle(sent=len(tracer._queue.take(10**9)))
    return spent / len(chunks) * 1e6


def per_async_chunk_us(tracer: AsyncTracing, client: Any, options: Any, chunks: list[Any]) -> float:
    """``per_chunk_us`` for an async stream's reading generator (``_streams._aiterate``,
    which an ``AsyncOpenAI``/``AsyncAnthropic`` stream goes through), against a bare
    ``async for`` over the same async generator, on one event loop."""
    tracer.instrument(client)
    inst = client.__dict__[STATE]
    loop = asyncio.new_event_loop()

    async def source(items: list[Any]) -> AsyncIterator[Any]:
        for item in items:
            yield item

    async def bare() -> None:
        async for _ in source(chunks):
            pass

    async def read(items: list[Any]) -> None:
        call = inst.begin(options, True)
        assert call is not None
        watch = _streams._Watch(call, call.endpoint.stream(call))
        async for _ in _streams._aiterate(source(items), watch):
            pass

    def run(make: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        return lambda: loop.run_until_complete(make())

    n = 50
    try:
        spent = (
            _best(run(lambda: read(chunks)), n)
            - _best(run(lambda: read([])), n)
            - _best(run(bare), n)
        )
    finally:
        loop.close()
    tracer._queue.settle(sent=len(tracer._queue.take(10**9)))
    return spent / len(chunks) * 1e6


def written_out_us(
    tracer: AsyncTracing, client: Any, options: Any, value: Any, batch: int = 100
) -> tuple[float, float]:
    """(microseconds per trace to write out a queued call's span, to encode it after):
    what the flusher does per trace, warm, a batch at a time. The call itself only kept
    the response; ``encode_batch`` of the fresh traces writes each span out (reads the
    response, shapes the input, makes the usage and the times) and encodes it; a second
    ``encode_batch`` of the same traces encodes only (best of 9 of each)."""
    tracer.instrument(client)
    inst = client.__dict__[STATE]
    first: list[float] = []
    again: list[float] = []
    for _ in range(9):
        for _ in range(batch):
            call = inst.begin(options, False)
            assert call is not None
            _hook._observe(call, value, False)
        traces = tracer._queue.take(10**9)
        now = datetime.now(UTC)
        began = time.process_time()
        encode_batch(traces, now)
        first.append(time.process_time() - began)
        began = time.process_time()
        encode_batch(traces, now)
        again.append(time.process_time() - began)
        tracer._queue.settle(sent=len(traces))
    write, encode = min(first) - min(again), min(again)
    return write / batch * 1e6, encode / batch * 1e6
