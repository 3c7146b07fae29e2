"""The trace and span active in the current context (contextvars).

Each asyncio task runs in a copy of the context it was created in, so a trace or span
made current in a request follows ``await``, ``asyncio.create_task``, ``asyncio.gather``
and ``asyncio.TaskGroup`` without leaking into concurrent requests.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ._models import Span, Trace

__all__ = ["current_span", "current_trace", "restore"]

_T = TypeVar("_T")

_trace_var: ContextVar[Trace | None] = ContextVar("tracing_current_trace", default=None)
_span_var: ContextVar[Span | None] = ContextVar("tracing_current_span", default=None)


def current_trace() -> Trace | None:
    """Return the trace active in this context, or None."""
    return _trace_var.get()


def current_span() -> Span | None:
    """Return the span active in this context, or None."""
    return _span_var.get()


def restore(var: ContextVar[_T], token: Token[_T]) -> None:
    """Undo ``var.set()``.

    A token from another context (a block entered in one task and left in another, an
    async generator finalised elsewhere) is ignored, never raised into the host program.
    """
    # Not contextlib.suppress: this runs twice per span, and a try costs nothing.
    try:  # noqa: SIM105
        var.reset(token)
    except ValueError:
        pass
