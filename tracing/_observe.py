"""``@tracer.observe()``: trace a function's calls.

Outside any trace a decorated call is a trace of its own; inside one (a current trace
exists) it is a span of it, nested under the current span. Arguments and the return
value are snapshotted through ``_capture`` (size-capped); ``mask`` runs later, when the
trace is queued. Tracing never changes what the function returns or raises.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from contextvars import Token
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from ._capture import capture
from ._context import _span_var, _trace_var, restore
from ._filters import sampled_in
from ._models import Span, Trace, _error_text

if TYPE_CHECKING:
    from ._client import AsyncTracing

__all__ = ["make_decorator"]

P = ParamSpec("P")
R = TypeVar("R")


def make_decorator(
    tracer: AsyncTracing,
    name: str | None,
    *,
    capture_input: bool,
    capture_output: bool,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The decorator ``tracer.observe(name, ...)`` returns."""
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"name must be a non-empty string or None, got {name!r}")

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                f"observe() cannot trace generator function {func.__qualname__}; "
                "trace the code that consumes it, or use tracer.trace() inside it"
            )
        call = _Observed(tracer, func, name, capture_input, capture_output)
        if inspect.iscoroutinefunction(func):
            return cast(Callable[P, R], _async_wrapper(call, cast(Any, func)))
        return _sync_wrapper(call, func)

    return decorate


def _async_wrapper(call: _Observed, func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not call.tracer._enabled:
            return await func(*args, **kwargs)
        frame = call.start(args, kwargs)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            call.finish(frame, error=exc)
            raise
        call.finish(frame, result=result)
        return result

    return wrapper


def _sync_wrapper(call: _Observed, func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not call.tracer._enabled:
            return func(*args, **kwargs)
        frame = call.start(args, kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            call.finish(frame, error=exc)
            raise
        call.finish(frame, result=result)
        return result

    return wrapper


class _Frame:
    """One decorated call in progress: its trace, its span (None at trace level), and
    the context tokens to restore when it ends."""

    __slots__ = ("keep", "span", "span_token", "trace", "trace_token")

    def __init__(
        self,
        trace: Trace,
        span: Span | None,
        trace_token: Token[Trace | None] | None,
        span_token: Token[Span | None],
        keep: bool,
    ) -> None:
        self.trace = trace
        self.span = span
        self.trace_token = trace_token
        self.span_token = span_token
        self.keep = keep


class _Observed:
    """What one decoration fixed: the tracer, the name, and how to read arguments."""

    __slots__ = ("capture_input", "capture_output", "name", "signature", "skip_first", "tracer")

    def __init__(
        self,
        tracer: AsyncTracing,
        func: Callable[..., Any],
        name: str | None,
        capture_input: bool,
        capture_output: bool,
    ) -> None:
        self.tracer = tracer
        self.name = name or getattr(func, "__qualname__", None) or repr(func)
        self.capture_input = capture_input
        self.capture_output = capture_output
        try:
            self.signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):  # some builtins and C callables have none
            self.signature = None
        params = list(self.signature.parameters) if self.signature is not None else []
        self.skip_first = bool(params) and params[0] in ("self", "cls")

    def arguments(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        """Bound arguments with defaults applied, ``self``/``cls`` left out, each captured."""
        if self.signature is None:
            return None
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError:  # the call itself is about to raise it
            return None
        bound.apply_defaults()
        items = iter(bound.arguments.items())
        if self.skip_first:
            next(items, None)
        return {key: capture(value) for key, value in items}

    def start(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Frame:
        parent = _trace_var.get()
        if parent is None:
            trace = self.tracer.trace(self.name)
            keep = _kept(self.tracer, trace)
            if keep and self.capture_input:
                trace.input = self.arguments(args, kwargs)
            return _Frame(trace, None, _trace_var.set(trace), _span_var.set(None), keep)
        keep = _kept(self.tracer, parent)
        span = parent.span(self.name)
        if keep and self.capture_input:
            span.input = self.arguments(args, kwargs)
        return _Frame(parent, span, None, _span_var.set(span), keep)

    def finish(
        self, frame: _Frame, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        """Restore the context, record the outcome, and queue the trace if it was ours."""
        restore(_span_var, frame.span_token)
        if frame.trace_token is not None:
            restore(_trace_var, frame.trace_token)
        output = capture(result) if frame.keep and self.capture_output and error is None else None
        span = frame.span
        if span is not None:
            span.end(output=output, error=error)
            return
        trace = frame.trace
        if trace._ended:  # the function ended its own trace; that one stands
            return
        if output is not None:
            trace.output = output
        if error is not None:
            trace.error = _error_text(error)
            trace.status = "error"
        # trace.end() is a coroutine only for the API's sake; this path must also work
        # for sync functions, on threads, with no loop. enqueue() ends it first.
        self.tracer.enqueue(trace)


def _kept(tracer: AsyncTracing, trace: Trace) -> bool:
    """Whether ``trace`` survives sampling; capturing for one that will not is wasted."""
    rate = tracer._config.sample_rate
    return rate >= 1.0 or sampled_in(trace.id, rate)
