"""Streams stay the SDK's own objects; only their iterator and their response's close
are watched.

``stream._iterator`` (the generator ``Stream.__next__``/``__iter__`` read from) is
replaced by one that hands each item to the endpoint's accumulator and ends the span
when the items run out or an error escapes. ``response.close``/``aclose`` (what
``Stream.close()``, ``with`` and the SDK's helper streams call) end it as closed, unless
the watching generator is running: then the SDK is closing the response itself while it
reads (at the end of the body, after ``[DONE]``, on an error), and the generator's own
outcome decides. A
``weakref.finalize`` on the stream ends a span whose stream was dropped unread. Whichever
comes first ends the span; the others do nothing.

The ``close``/``aclose`` set on the response hold its own bound methods (they must work
even while the response is being collected), so until the span ends the response is in
a reference cycle. The end removes them again: a stream that has ended and is dropped
frees its response, request, headers and buffers (76-92 objects, measured) at once, as
without tracing, instead of leaving them to the garbage collector, or for good in a
process that disables it (benchmarks/RESULTS.md, session 19).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ._call import LlmCall
from ._soft import failed

__all__ = ["StreamFailed", "watch_stream"]

_UNSET = object()


class StreamFailed(Exception):
    """Recorded, never raised: a stream whose events said it failed while the SDK raised
    nothing (a Responses stream's ``response.failed`` or ``error`` event)."""


class _Watch:
    __slots__ = ("accumulator", "add", "call", "finalizer", "patched", "reader", "response")

    def __init__(self, call: LlmCall, accumulator: Any) -> None:
        self.call = call
        self.accumulator = accumulator
        # The accumulator's add() times the first item, never raises, and returns the
        # item: the one call per item on top of the SDK's own work.
        self.add: Callable[[Any], Any] = _same if accumulator is None else accumulator.add
        self.reader: Callable[[], Any] = _nothing
        self.finalizer: weakref.finalize[Any, Any] | None = None
        self.response: Any = None
        # What the response's instance had under each name we set, and what we set.
        self.patched: list[tuple[str, Any, Any]] = []

    def patch(self, response: Any, name: str, replacement: Any) -> None:
        """Set ``response.<name>`` to ``replacement`` until the span ends."""
        self.response = response
        self.patched.append((name, response.__dict__.get(name, _UNSET), replacement))
        setattr(response, name, replacement)

    def unpatch(self) -> None:
        """Take our ``close``/``aclose`` off the response (one that is no longer ours, set
        by someone after us, stays), which ends the cycle through them."""
        response, patched = self.response, self.patched
        self.response, self.patched = None, []
        if response is None:
            return
        own = response.__dict__
        for name, before, replacement in patched:
            if own.get(name) is replacement:
                if before is _UNSET:
                    del own[name]
                else:
                    own[name] = before

    def stopped(self, exc: BaseException) -> None:
        """The reading generator stops on ``exc``: closed early, or the stream failed."""
        if isinstance(exc, GeneratorExit):
            self.end(incomplete="closed")
        else:
            self.end(error=exc)

    def end(self, error: BaseException | None = None, incomplete: str | None = None) -> None:
        self.unpatch()
        call = self.call
        if call.done:
            return
        if self.finalizer is not None:
            self.finalizer.detach()
        if self.accumulator is not None:
            try:
                self.accumulator.close()
                failure = getattr(self.accumulator, "failure", None)
                if error is None and failure:
                    error = StreamFailed(failure)
            except Exception:
                failed("finish reading an LLM stream")
        call.finish(error=error, incomplete=incomplete)

    def closed(self) -> None:
        """The HTTP response is being closed: by the consumer, unless our reading
        generator is running (the SDK closes the response as it finishes or fails)."""
        if self.call.done:
            return
        reader = self.reader()
        if reader is not None and (
            getattr(reader, "gi_running", False) or getattr(reader, "ag_running", False)
        ):
            return
        self.end(incomplete="closed")


def _iterate(inner: Iterator[Any], watch: _Watch) -> Iterator[Any]:
    add = watch.add
    try:
        for item in inner:
            yield add(item)
    except BaseException as exc:
        watch.stopped(exc)
        raise
    watch.end()


async def _aiterate(inner: AsyncIterator[Any], watch: _Watch) -> AsyncIterator[Any]:
    add = watch.add
    try:
        async for item in inner:
            yield add(item)
    except BaseException as exc:
        watch.stopped(exc)
        raise
    watch.end()


def sync_reader(inner: Iterator[Any], watch: _Watch) -> Iterator[Any]:
    """The generator that reads a sync stream: the accumulator's own ``iterate`` (its
    ``add()`` inlined) when it has one, else ``_iterate``."""
    iterate = getattr(watch.accumulator, "iterate", None)
    if iterate is not None:
        reader: Iterator[Any] = iterate(inner, watch)
        return reader
    return _iterate(inner, watch)


def async_reader(inner: AsyncIterator[Any], watch: _Watch) -> AsyncIterator[Any]:
    """``sync_reader`` for async streams: the accumulator's ``aiterate``, else ``_aiterate``."""
    aiterate = getattr(watch.accumulator, "aiterate", None)
    if aiterate is not None:
        reader: AsyncIterator[Any] = aiterate(inner, watch)
        return reader
    return _aiterate(inner, watch)


def _nothing() -> None:
    return None


def _same(item: Any) -> Any:
    return item


def _abandoned(watch: _Watch) -> None:
    watch.end(incomplete="abandoned")


def watch_stream(stream: Any, call: LlmCall, accumulator: Any, is_async: bool) -> None:
    """Watch ``stream`` (an SDK ``Stream``/``AsyncStream``) until it ends."""
    inner = stream._iterator
    watch = _Watch(call, accumulator)
    response = stream.response
    reader: Any
    if is_async:
        stream._iterator = reader = async_reader(inner, watch)
        original_aclose = response.aclose

        async def aclose() -> None:
            watch.closed()
            await original_aclose()

        watch.patch(response, "aclose", aclose)
    else:
        stream._iterator = reader = sync_reader(inner, watch)
    watch.reader = weakref.ref(reader)
    # Sync streams close through close(); the async SDK clients sometimes call close()
    # on an async response too (a sync close of the underlying stream).
    original_close = response.close

    def close() -> None:
        watch.closed()
        original_close()

    watch.patch(response, "close", close)
    watch.finalizer = finalizer = weakref.finalize(stream, _abandoned, watch)
    finalizer.atexit = False
