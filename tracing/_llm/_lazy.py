"""The span (and trace) of an LLM call, written out when it is first read.

An API call records at call time only what must be taken then: the clock (``time_ns``),
a snapshot of the request's input (orjson bytes), the request body when it names
parameters, and what the response said. The metadata, the input's shaping (base64
markers, the capture cap), the usage record, the output and the datetimes are made
when a field of the span is first read: by the flusher when it encodes the trace (warm,
over a batch of traces), by the mask when the trace is queued, or by a user looking at
the span. A record that is read always shows what the eager code wrote at that point of
the call: the start (input, metadata, start time) once the call has begun, the end
(output, usage, end time) once it has ended. The ids, too, are drawn when one is first
read (one 256-bit draw per call, kept by it) and stored then: every later read, and the
wire, see the same id.

``LlmSpan`` and ``OwnTrace`` are ``Span`` and ``Trace`` with properties over the fields
written late; the values are kept in the attrs classes' own slots, so everything else
(``attrs.fields``, ``asdict``, ``repr``, the wire and OTLP encoders) is unchanged. A
failure while writing out is logged and leaves the fields it could not fill empty: the
record is still sent, and nothing is raised into whoever read it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .._fields import _getrandbits
from .._models import Span, Trace, _set_spans, _set_tags
from ._soft import failed

if TYPE_CHECKING:
    from ._call import LlmCall

__all__ = ["LATE_SPAN_FIELDS", "SPAN_SLOTS", "LlmSpan", "OwnTrace", "at_ns"]

# One writer at a time: a record read from two threads at once is written out once.
_lock = threading.Lock()
_from_timestamp = datetime.fromtimestamp


def at_ns(ns: int) -> datetime:
    """``datetime.now(UTC)`` as it was at ``time.time_ns()`` == ``ns``: both floor to the
    microsecond. The float of the whole microseconds is within 0.12 us of them (a double
    near 1.7e9 s), and ``fromtimestamp`` rounds to the nearest microsecond: exact, at
    half the cost of ``epoch + timedelta(microseconds=...)``."""
    return _from_timestamp(ns // 1000 / 1e6, UTC)


class LlmSpan(Span):
    """The span of an LLM call; ``_llm`` is its call while part of it is still unwritten."""

    __slots__ = ("_llm",)
    _llm: LlmCall | None
    _id_slot: str | None  # the raw id and _trace_id slots (set below)
    _trace_id_slot: str | None

    def __repr__(self) -> str:  # what a Span's repr says
        text = Span.__repr__(self)
        return "Span" + text[len(type(self).__qualname__) :]


class OwnTrace(Trace):
    """The trace of its own of an LLM call made outside any trace (its times written late)."""

    __slots__ = ("_llm",)
    _llm: LlmCall | None
    _tags_slot: Any  # Trace's raw tags and id slots (set below)
    _id_slot: str | None

    def __repr__(self) -> str:  # what a Trace's repr says
        text = Trace.__repr__(self)
        return "Trace" + text[len(type(self).__qualname__) :]


_get_call: Callable[[Any], LlmCall | None] = LlmSpan.__dict__["_llm"].__get__
_set_call: Callable[[Any, LlmCall | None], None] = LlmSpan.__dict__["_llm"].__set__
_get_trace_call: Callable[[Any], LlmCall | None] = OwnTrace.__dict__["_llm"].__get__
_set_trace_call: Callable[[Any, LlmCall | None], None] = OwnTrace.__dict__["_llm"].__set__


def _pending(record: Any, get: Callable[[Any], LlmCall | None]) -> LlmCall | None:
    try:
        return get(record)
    except AttributeError:  # made by attrs' __init__ (evolve, copy): nothing pending
        return None


def write_span(span: LlmSpan) -> None:
    """Write out what the call has recorded and the span does not show yet."""
    with _lock:
        call = _pending(span, _get_call)
        if call is None:
            return
        if not call.started_written:
            call.started_written = True
            call.write_start(span)
        if call.ended:
            # The ids not read yet, stored before the span lets go of its call (inline:
            # this runs once per LLM span, in the flusher).
            if _get_id(span) is None:
                _put_id(span, (call.ids or _call_ids(call))[32:])
            if _get_trace_id(span) is None:  # only an own trace's span leaves it unset
                _put_trace_id(span, (call.ids or _call_ids(call))[:32])
            _set_call(span, None)
            call.write_end(span)


def write_trace(trace: OwnTrace) -> None:
    """The trace of its own: its start, and its end once the call has ended."""
    with _lock:
        call = _pending(trace, _get_trace_call)
        if call is None:
            return
        if not call.trace_started:
            call.trace_started = True
            _START.put(trace, call.start_time())
        if call.ended:
            if _get_id(trace) is None:  # stored before the trace lets go of its call
                _put_id(trace, (call.ids or _call_ids(call))[:32])
            _set_trace_call(trace, None)
            _END.put(trace, call.end_time())


def _call_ids(call: LlmCall) -> str:
    """The call's 256 random bits as 64 hex digits, drawn once (under ``_lock``): the
    own trace's id is the first half, its span's id the second; a span inside a trace
    uses the second half only (32 hex digits each, as ``new_id()``'s)."""
    ids = call.ids
    if ids is None:
        ids = call.ids = _getrandbits(256).to_bytes(32, "little").hex()
    return ids


def _lazy_id(slot: _Slot, pending: Callable[[Any], LlmCall | None], part: slice) -> property:
    """An id drawn when first read, then the same every time: the raw slot once stored;
    before that (None there: ``open_own_trace``/``open_child_span`` store None, which no
    id can be, so that no read raises and catches an AttributeError, ~6k instructions
    each), its part of the call's ``ids``, stored now under ``_lock``, so that two
    threads reading it at once get one id."""
    get, put = slot.get, slot.put

    def read(self: Any) -> Any:
        value = get(self)
        if value is not None:
            return value
        with _lock:
            value = get(self)
            if value is None:
                call = _pending(self, pending)
                # No call: never made so (open_call makes every call); an id of its own.
                value = _call_ids(call)[part] if call is not None else _new_id()
                put(self, value)
            return value

    return property(read, put)


def _new_id() -> str:
    return _getrandbits(128).to_bytes(16, "little").hex()


class _Slot:
    """An attrs slot of ``Span``/``Trace``, read and written without the property."""

    def __init__(self, owner: type, name: str) -> None:
        descriptor = owner.__dict__[name]
        self.get: Callable[[Any], Any] = descriptor.__get__
        self.put: Callable[[Any, Any], None] = descriptor.__set__


def _base_owner(cls: type, name: str) -> type:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass
    raise LookupError(name)  # pragma: no cover - every field is a slot of the MRO


LATE_SPAN_FIELDS = ("start_time", "end_time", "input", "output", "metadata", "llm_usage")
SPAN_SLOTS = {name: _Slot(_base_owner(Span, name), name) for name in LATE_SPAN_FIELDS}
_ID_MEMBER: Any = _base_owner(Span, "id").__dict__["id"]  # Trace's too (_Record's)
_TRACE_ID_MEMBER: Any = _base_owner(Span, "_trace_id").__dict__["_trace_id"]
_ID = _Slot(_base_owner(Span, "id"), "id")
_TRACE_ID = _Slot(_base_owner(Span, "_trace_id"), "_trace_id")
_get_id, _put_id = _ID.get, _ID.put
_get_trace_id, _put_trace_id = _TRACE_ID.get, _TRACE_ID.put
_START = _Slot(_base_owner(Trace, "start_time"), "start_time")
_END = _Slot(_base_owner(Trace, "end_time"), "end_time")


def _late_property(
    slot: _Slot, pending: Callable[[Any], LlmCall | None], write_out: Callable[[Any], None]
) -> property:
    """A field of a span or trace that writes the call's record out before it is touched."""
    get, put = slot.get, slot.put

    def read(self: Any) -> Any:
        if _pending(self, pending) is not None:
            _write_safely(write_out, self)
        try:
            return get(self)
        except AttributeError:  # not written (yet): what the eager record held, None
            return None

    def write(self: Any, value: Any) -> None:
        if _pending(self, pending) is not None:
            _write_safely(write_out, self)
        put(self, value)

    return property(read, write)


def _write_safely(write: Callable[[Any], None], record: Any) -> None:
    try:
        write(record)
    except Exception:  # never into whoever reads the record (the flusher, a user)
        failed("write out an LLM span")


for _name, _slot in SPAN_SLOTS.items():
    setattr(LlmSpan, _name, _late_property(_slot, _get_call, write_span))
# An own trace's spans are always a list (its one span): the raw slot, read and written
# without the lazy list's property (a descriptor call per write, cold, once per call).
_SPANS_SLOT: Any = _set_spans.__self__  # type: ignore[attr-defined]  # Trace's member
setattr(OwnTrace, "spans", _SPANS_SLOT)  # noqa: B010
# And under a name of its own on Trace: an LLM span appended to a current trace reads
# and writes the raw slot by plain attribute access (specialised, no descriptor call).
setattr(Trace, "_spans_slot", _SPANS_SLOT)  # noqa: B010
# Its tags' raw slot, written once by open_own_trace() under a name of its own (a plain
# store there; ``tags`` stays the lazy list's property every reader goes through).
_TAGS_SLOT: Any = _set_tags.__self__  # type: ignore[attr-defined]  # Trace's member
setattr(OwnTrace, "_tags_slot", _TAGS_SLOT)  # noqa: B010
setattr(OwnTrace, "start_time", _late_property(_START, _get_trace_call, write_trace))  # noqa: B010
setattr(OwnTrace, "end_time", _late_property(_END, _get_trace_call, write_trace))  # noqa: B010
# The ids, drawn when first read (an own trace's two from one draw; see _call_ids). The
# raw slots also under names of their own, for the plain stores of the records' makers.
for _cls in (LlmSpan, OwnTrace):
    setattr(_cls, "_id_slot", _ID_MEMBER)  # noqa: B010
setattr(LlmSpan, "_trace_id_slot", _TRACE_ID_MEMBER)  # noqa: B010
setattr(LlmSpan, "id", _lazy_id(_ID, _get_call, slice(32, None)))  # noqa: B010
setattr(LlmSpan, "_trace_id", _lazy_id(_TRACE_ID, _get_call, slice(None, 32)))  # noqa: B010
setattr(OwnTrace, "id", _lazy_id(_ID, _get_trace_call, slice(None, 32)))  # noqa: B010
