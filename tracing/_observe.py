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
from datetime import UTC
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from ._capture import capture
from ._context import _span_var, _trace_var, restore
from ._fields import _now
from ._filters import sampled_in
from ._models import Span, Trace, _error_text, open_span

if TYPE_CHECKING:
    from ._client import AsyncTracing

__all__ = ["make_decorator"]

P = ParamSpec("P")
_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
_PLAIN = (inspect.Parameter.POSITIONAL_OR_KEYWORD, _KEYWORD_ONLY)
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
            call.finish(frame, None, exc)
            raise
        call.finish(frame, result, None)
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
            call.finish(frame, None, exc)
            raise
        call.finish(frame, result, None)
        return result

    return wrapper


# One decorated call in progress: its trace, its span (None at trace level), the context
# tokens to restore when it ends, and whether the trace survives sampling. A tuple, not
# a class: it is made and dropped on every call.
_Frame = tuple[Trace, "Span | None", "Token[Trace | None] | None", "Token[Span | None]", bool]


class _Observed:
    """What one decoration fixed: the tracer, the name, and how to read arguments."""

    __slots__ = (
        "capture_input",
        "capture_output",
        "defaults",
        "name",
        "names",
        "positional",
        "rate",
        "signature",
        "skip_first",
        "tracer",
    )

    def __init__(
        self,
        tracer: AsyncTracing,
        func: Callable[..., Any],
        name: str | None,
        capture_input: bool,
        capture_output: bool,
    ) -> None:
        self.tracer = tracer
        self.rate = tracer._config.sample_rate  # the config is frozen
        self.name = name or getattr(func, "__qualname__", None) or repr(func)
        if not isinstance(self.name, str) or not self.name:  # spans skip the name check
            self.name = repr(func)
        self.capture_input = capture_input
        self.capture_output = capture_output
        try:
            self.signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):  # some builtins and C callables have none
            self.signature = None
        params = list(self.signature.parameters.values()) if self.signature is not None else []
        self.skip_first = bool(params) and params[0].name in ("self", "cls")
        # The fast binder's plan (None: always Signature.bind): parameter names in order,
        # how many take positional arguments, and the defaults.
        self.names: tuple[str, ...] | None = None
        self.positional = 0
        self.defaults: dict[str, Any] = {}
        if params and all(p.kind in _PLAIN for p in params):
            self.names = tuple(p.name for p in params)
            self.positional = sum(p.kind is not _KEYWORD_ONLY for p in params)
            self.defaults = {p.name: p.default for p in params if p.default is not p.empty}
        elif not params and self.signature is not None:
            self.names = ()

    def arguments(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        """Bound arguments with defaults applied, ``self``/``cls`` left out, each captured."""
        names = self.names
        if names is not None and not kwargs and len(args) == len(names) == self.positional:
            # Every parameter given positionally (the common call): no binding to do.
            if self.skip_first:
                return {key: capture(value) for key, value in zip(names[1:], args[1:], strict=True)}
            return {key: capture(value) for key, value in zip(names, args, strict=True)}
        bound = self._bind(args, kwargs)
        if bound is None:
            return None
        items = iter(bound.items())
        if self.skip_first:
            next(items, None)
        return {key: capture(value) for key, value in items}

    def _bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        """``Signature.bind(...)`` + ``apply_defaults()`` as a dict, in parameter order.

        Functions without ``*args``/``**kwargs``/positional-only parameters (nearly all)
        are bound here, ~10x faster; anything else, and every call that does not fit
        the signature, goes through ``inspect``, which decides (None: the call is about
        to raise its own TypeError).
        """
        names = self.names
        if names is not None and len(args) <= self.positional:
            if not kwargs and len(args) == len(names):
                return dict(zip(names, args, strict=True))
            bound = dict(zip(names, args, strict=False))
            used = 0
            defaults = self.defaults
            for name in names[len(args) :]:
                if name in kwargs:
                    bound[name] = kwargs[name]
                    used += 1
                elif name in defaults:
                    bound[name] = defaults[name]
                else:
                    break  # missing: inspect decides
            else:
                if used == len(kwargs):  # no unknown keyword, none given twice
                    return bound
        return self._bind_slow(args, kwargs)

    def _bind_slow(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        if self.signature is None:
            return None
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError:  # the call itself is about to raise it
            return None
        bound.apply_defaults()
        return dict(bound.arguments)

    def start(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Frame:
        parent = _trace_var.get()
        rate = self.rate
        if parent is None:
            trace = self.tracer.trace(self.name)
            keep = rate >= 1.0 or sampled_in(trace.id, rate)
            if keep and self.capture_input:
                trace.input = self.arguments(args, kwargs)
            return (trace, None, _trace_var.set(trace), _span_var.set(None), keep)
        # Capturing for a trace that sampling drops would be wasted work.
        keep = rate >= 1.0 or sampled_in(parent.id, rate)
        span = open_span(parent, self.name, None, {})  # the name was checked at decoration
        if keep and self.capture_input:
            span.input = self.arguments(args, kwargs)
        return (parent, span, None, _span_var.set(span), keep)

    def finish(self, frame: _Frame, result: Any, error: BaseException | None) -> None:
        """Restore the context, record the outcome, and queue the trace if it was ours."""
        trace, span, trace_token, span_token, keep = frame
        restore(_span_var, span_token)
        if trace_token is not None:
            restore(_trace_var, trace_token)
        output = capture(result) if keep and self.capture_output and error is None else None
        if span is not None:
            if span.end_time is None:  # span.end(output=output, error=error), inlined
                span.end_time = _now(UTC)
                if output is not None:
                    span.output = output
                if error is not None:
                    span.error = _error_text(error)
                    span.status = "error"
            return
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
