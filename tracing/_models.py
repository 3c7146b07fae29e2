"""The records the SDK builds: ``Trace`` and ``Span`` (attrs classes), mutable until they end.

The frozen values (``LlmUsage``, ``ApiResponse``, ...) live in ``_values`` and the fields'
checks in ``_fields``; both are re-exported here. Serialisation to the wire format lives in
``_wire``, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextvars import Token
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs

from ._args import check_end_time, metadata_arg, tags_arg, tags_or_none
from ._context import _span_var, _trace_var, restore
from ._fields import (
    _STATUSES,
    Status,
    _check_name,
    _check_status,
    _getrandbits,
    _id_or_new,
    _now,
    _to_utc,
    _to_utc_or_none,
)

# Imported from here by other modules (they lived here before the split).
from ._fields import _error_text as _error_text
from ._fields import new_id as new_id
from ._fields import utcnow as utcnow
from ._log import never_ended
from ._values import ApiResponse, BatchResult, LlmUsage, Stats

if TYPE_CHECKING:
    from ._client import AsyncTracing

__all__ = ["ApiResponse", "BatchResult", "LlmUsage", "Span", "Stats", "Trace"]


# Validators and converters run at construction only (on_setattr=NO_OP): attrs' default
# re-runs them on every assignment through a generated __setattr__, which cost ~0.5 us per
# assignment and about a quarter of trace()+end() (benchmarks/README.md).
@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class _Record:
    """The fields a trace and a span share."""

    name: str = attrs.field(validator=_check_name)
    id: str = attrs.field(default=None, converter=_id_or_new, kw_only=True)
    start_time: datetime = attrs.field(factory=utcnow, converter=_to_utc, kw_only=True)
    end_time: datetime | None = attrs.field(
        default=None, converter=_to_utc_or_none, validator=check_end_time, kw_only=True
    )
    status: Status = attrs.field(default="ok", validator=_check_status, kw_only=True)
    error: str | None = attrs.field(default=None, kw_only=True)
    input: Any = attrs.field(default=None, kw_only=True)
    output: Any = attrs.field(default=None, kw_only=True)
    metadata: dict[str, Any] = attrs.field(factory=dict, kw_only=True)
    llm_usage: LlmUsage | None = attrs.field(default=None, kw_only=True)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or None while still open."""
        end = self.end_time
        return None if end is None else (end - self.start_time).total_seconds()


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class Span(_Record):
    """A timed step inside a trace: an LLM call, a tool call, a retrieval.

    Made by ``trace.span(name)``; usable as ``with`` and ``async with``. While its block
    runs it is the current span, and spans made inside it get it as their parent.
    """

    parent_id: str | None = attrs.field(default=None, kw_only=True)
    # The id of the trace it belongs to, not the Trace: a span pointing back at a trace
    # that lists it would make every trace with spans a reference cycle, freed only by the
    # cyclic GC (whose full passes over a service's heap cost more than the tracing did).
    _trace_id: str | None = attrs.field(default=None, init=False, repr=False)
    _token: Token[Span | None] | None = attrs.field(default=None, init=False, repr=False)

    def end(
        self,
        *,
        output: Any = None,
        llm_usage: LlmUsage | None = None,
        error: BaseException | str | None = None,
    ) -> None:
        """Stamp the end time. A second call is ignored.

        Args:
            output: the step's result.
            llm_usage: token usage of the step.
            error: an exception or message; sets status "error".
        """
        if self.end_time is not None:
            return
        self.end_time = _now(UTC)
        if output is not None:
            self.output = output
        if llm_usage is not None:
            self.llm_usage = llm_usage
        if error is not None:
            self.error = _error_text(error)
            self.status = "error"

    def __enter__(self) -> Self:
        self._token = _span_var.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            restore(_span_var, self._token)
            self._token = None
        self.end(error=exc)

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class ReadBack(int):
    """A spool record's reference (an ``int``, as the writer's) held by a trace read back
    from disk: the exporter derives such a batch's ``Idempotency-Key`` from its trace ids,
    so a batch replayed again after another crash carries the same key."""

    __slots__ = ()


def _streaming(span: Span) -> bool:
    """An LLM call's span whose stream is still being read: it holds its trace
    (``_holds``), and its end is the stream's, not the trace's."""
    call = getattr(span, "_llm", None)
    return call is not None and call.held and not call.done


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class Trace(_Record):
    """One run of an LLM or agent task: the unit the SDK queues and sends.

    Made by ``tracer.trace(name)`` (clock starts then) or built directly, every field a
    keyword, and handed to ``tracer.enqueue()`` or ``tracer.send_batch()``.
    """

    description: str | None = attrs.field(default=None, kw_only=True)
    input_summary: str | None = attrs.field(default=None, kw_only=True)
    output_summary: str | None = attrs.field(default=None, kw_only=True)
    # Stored as None until first read (see _lazy_list below): an empty list per trace is
    # a GC-tracked object, and a deep backlog of them made full collections pause the loop.
    tags: list[str] = attrs.field(default=None, converter=tags_or_none, kw_only=True)
    spans: list[Span] = attrs.field(default=None, kw_only=True)
    # Set by AsyncTracing.trace(): where end() enqueues the trace.
    _tracer: AsyncTracing | None = attrs.field(default=None, init=False, repr=False)
    _ended: bool = attrs.field(default=False, init=False, repr=False)
    _queued: bool = attrs.field(default=False, init=False, repr=False)
    _masked: bool = attrs.field(default=False, init=False, repr=False)
    # The trace's wire form, encoded once by the flusher and reused on retries.
    _wire: bytes | None = attrs.field(default=None, init=False, repr=False)
    # With a spool: where its record is on disk (for the acknowledgement), or how it was
    # counted while it waits for the spool writer (see _spool_queue); a ``ReadBack`` for
    # a trace read back from disk.
    _spool: Any = attrs.field(default=None, init=False, repr=False)
    _token: Token[Trace | None] | None = attrs.field(default=None, init=False, repr=False)

    def span(
        self, name: str, *, input: Any = None, metadata: Mapping[str, Any] | None = None
    ) -> Span:
        """Start a child span (clock starts now).

        Its parent is the current span when that span belongs to this trace, otherwise
        it is a top-level span of the trace.
        """
        _check_name(None, None, name)
        return open_span(self, name, input, metadata_arg(metadata) if metadata else {})

    def _finish(self) -> None:
        """Stamp the end time (if missing) on the trace and on every open span."""
        self._ended = True
        end = self.end_time
        if end is None:
            end = self.end_time = _now(UTC)
        spans = _get_spans(self)
        if spans:
            for span in spans:
                if span.end_time is None and not _streaming(span):
                    span.end_time = end

    async def end(
        self,
        *,
        output: Any = None,
        output_summary: str | None = None,
        status: Status | None = None,
        error: BaseException | str | None = None,
        llm_usage: LlmUsage | None = None,
    ) -> None:
        """Stamp the end time and queue the trace for delivery. A second call is ignored.

        Never waits for the network and never raises because of delivery.

        Args:
            output: the run's result.
            output_summary: a short text for lists and dashboards.
            status: "ok" or "error"; defaults to "error" when ``error`` is given.
            error: an exception or message.
            llm_usage: token usage of the whole run.

        Raises:
            ValueError: ``status`` is not "ok" or "error".
        """
        if status is not None and status not in _STATUSES:
            raise ValueError(f"status must be 'ok' or 'error', got {status!r}")
        if self._ended:
            return
        if output is not None:
            self.output = output
        if output_summary is not None:
            self.output_summary = output_summary
        if llm_usage is not None:
            self.llm_usage = llm_usage
        if error is not None:
            self.error = _error_text(error)
            self.status = "error"
        if status is not None:
            self.status = status
        self._finish()
        if self._tracer is not None:
            self._tracer.enqueue(self)

    def __del__(self) -> None:
        # A trace from tracer.trace() collected with no end() and never enqueued was
        # never sent: say so (issue 13). Every trace passes here when it dies, so the
        # common case is one slot read; the report is _log's.
        try:
            if self._ended or self._queued or self._tracer is None:
                return
            never_ended(self.name, self.id)
        except Exception:  # __init__ raised before the slots were set; interpreter exit
            return

    async def __aenter__(self) -> Self:
        self._token = _trace_var.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            restore(_trace_var, self._token)
            self._token = None
        await self.end(error=exc)


def _lazy_list(slot: Any) -> tuple[property, Callable[[Trace], Any], Callable[[Trace, Any], None]]:
    """A property over an attrs slot that holds None until the list is first read.

    The attrs field keeps its public name (``attrs.fields``, ``__init__``, ``evolve``,
    ``asdict`` and ``repr`` are unchanged); reading it gives a real list, made and stored
    on first access, so appending to it works as before. The SDK reads the raw slot
    (``_get_tags``/``_get_spans``) and never makes the list: most traces have no tags or
    spans, and each empty list was one more GC-tracked object per queued trace.
    """
    get, put = slot.__get__, slot.__set__

    def read(self: Trace) -> Any:
        value = get(self)
        if value is None:
            value = []
            put(self, value)
        return value

    return property(read, put), get, put


_tags_property, _get_tags, _set_tags = _lazy_list(Trace.__dict__["tags"])
_spans_property, _get_spans, _set_spans = _lazy_list(Trace.__dict__["spans"])
setattr(Trace, "tags", _tags_property)  # noqa: B010  (mypy: a list attribute to users)
setattr(Trace, "spans", _spans_property)  # noqa: B010

_new_object = object.__new__


def start_trace(
    name: str,
    id: str | None,
    input: Any,
    description: str | None,
    input_summary: str | None,
    metadata: Mapping[str, Any] | None,
    tags: Iterable[str] | None,
) -> Trace:
    """``Trace(name, id=..., ...)`` for ``AsyncTracing.trace()``, without attrs' ``__init__``.

    The same checks (name, id) and the same fields, minus the converters and validators
    whose inputs the tracer itself supplies (a fresh UTC start time, no end time, status
    "ok"): ~1.1 vs ~2.0 us per trace (benchmarks/README.md). ``tags`` None: made on
    first read. ``_START_FIELDS`` below keeps it in step with the attrs fields.
    """
    _check_name(None, None, name)
    trace: Trace = _new_object(Trace)
    trace.name = name
    trace.id = _id_or_new(id)
    trace.start_time = _now(UTC)
    trace.end_time = None
    trace.status = "ok"
    trace.error = None
    trace.input = input
    trace.output = None
    trace.metadata = metadata_arg(metadata) if metadata else {}
    trace.llm_usage = None
    trace.description = description
    trace.input_summary = input_summary
    trace.output_summary = None
    _set_tags(trace, tags_arg(tags) if tags else None)
    _set_spans(trace, None)
    trace._tracer = None
    trace._ended = False
    trace._queued = False
    trace._masked = False
    trace._wire = None
    trace._spool = None
    trace._token = None
    return trace


_START_FIELDS = (
    "name id start_time end_time status error input output metadata llm_usage description "
    "input_summary output_summary tags spans _tracer _ended _queued _masked _wire _spool _token"
)
if [field.name for field in attrs.fields(Trace)] != _START_FIELDS.split():  # pragma: no cover
    raise RuntimeError("start_trace() and open_own_trace() must set every field of Trace")


def open_span(trace: Trace, name: str, input: Any, metadata: dict[str, Any]) -> Span:
    """``trace.span(name)`` for a name already checked, without attrs' ``__init__``.

    Parented under the current span when that span belongs to ``trace``, and appended to
    its spans. The id and the UTC start time are made here, so no converter or validator
    has anything to do (~1.6 vs ~2.5 us per span, benchmarks/README.md); ``observe()``
    calls it directly (its name was checked when it decorated). ``_SPAN_FIELDS`` keeps it
    in step with the attrs fields.
    """
    current = _span_var.get()
    trace_id = trace.id
    span: Span = _new_object(Span)
    span.name = name
    span.id = _getrandbits(128).to_bytes(16, "little").hex()  # new_id(), inlined
    span.start_time = _now(UTC)
    span.end_time = None
    span.status = "ok"
    span.error = None
    span.input = input
    span.output = None
    span.metadata = metadata
    span.llm_usage = None
    span.parent_id = current.id if current is not None and current._trace_id == trace_id else None
    span._trace_id = trace_id
    span._token = None
    spans = _get_spans(trace)
    if spans is None:
        _set_spans(trace, [span])
    else:
        spans.append(span)
    return span


_SPAN_FIELDS = (
    "name id start_time end_time status error input output metadata llm_usage parent_id "
    "_trace_id _token"
)
if [field.name for field in attrs.fields(Span)] != _SPAN_FIELDS.split():  # pragma: no cover
    raise RuntimeError("open_span() and open_own_trace() must set every field of Span")
