"""A queued trace reduced to its bytes once the spool has encoded it.

With the spool on and the JSON protocol, what the flusher needs of a queued trace after
its record is framed is its id, its JSON (``_wire``, the bytes the POST joins) and where
its record is (``_spool``). The ``Trace`` itself, with its input, output, metadata and
spans, is not needed again, so the loop's encoding (``_spool_queue``) swaps it in the
inbox for an ``Encoded`` holding only those, and the writer swaps what it encoded
itself before placing its group. The user's object is not changed; it is freed at once
when nothing else holds it (from the loop: while it is still in the CPU's caches), and
the queue holds one copy of each trace (its bytes) instead of two.

Measured with ``trace()+end()`` flat out (150,000 traces of ~1.4 KB, ~70,000 queued at
the peak): peak RSS ~165 instead of ~190 MB, and fewer objects for every garbage
collection to traverse, which shortens the writer's worst waits for the GIL
(benchmarks/RESULTS.md, session 13).

A trace handed back to the user (``on_error``: rejected for good, or dropped) is rebuilt
from its bytes by ``for_user``: the same fields, a new object, as for a trace replayed
from disk. OTLP encodes from the fields, so with it nothing is swapped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any

from ._log import logger
from ._models import Trace, _new_object, start_trace
from ._spool_decode import trace_from_wire

__all__ = ["Encoded", "for_user", "stub_of", "swap_encoded", "swapped"]

UNREADABLE_NAME = "(queued trace, its JSON not read back)"


class Encoded:
    """A queued trace as its id, its JSON and its record; only the spool makes them.

    Not a ``Trace`` subclass: that would carry all of its ~20 slots (~200 bytes, each
    visited by every garbage collection), where the queue reads only these three."""

    __slots__ = ("_spool", "_wire", "id")

    id: str
    _wire: bytes | None
    _spool: Any

    def __repr__(self) -> str:
        return f"<tracing queued trace {self.id} ({len(self._wire or b'')} bytes of JSON)>"


# As a plain ``type``: the queue's lists are typed ``Trace`` (what an ``Encoded`` stands for).
_ENCODED: type = Encoded
_ONLY_ENCODED = {_ENCODED}
_ID, _WIRE, _SPOOL = attrgetter("id"), attrgetter("_wire"), attrgetter("_spool")


def stub_of(trace_id: str, payload: bytes | None, spool: Any) -> Trace:
    """An ``Encoded`` (made without ``__init__``), typed as the ``Trace`` it stands for
    in the queue: a record's read back from disk (``spool``: its ``ReadBack``), or a
    trace the writer framed itself."""
    stub: Trace = _new_object(_ENCODED)
    stub.id = trace_id
    stub._wire = payload
    stub._spool = spool
    return stub


def swapped(traces: list[Trace]) -> list[Trace]:
    """The ``Encoded`` of each of ``traces``, all with their JSON (the loop's encoding).

    Made and filled by ``map`` in C: no Python frame per trace. This runs on the event
    loop for every trace queued with the spool on; a call of ``stub_of`` per trace was
    ~100 ns and ~1,000 instructions of it (benchmarks/RESULTS.md, session 14)."""
    stubs: list[Trace] = list(map(_new_object, repeat(_ENCODED, len(traces))))
    for name, field in (("id", _ID), ("_wire", _WIRE), ("_spool", _SPOOL)):
        deque(map(setattr, stubs, repeat(name), map(field, traces)), maxlen=0)
    return stubs


def swap_encoded(group: list[Trace]) -> list[Trace]:
    """``group`` with each trace that has its JSON swapped for its ``Encoded`` (the
    writer's group, before it is placed); the same list when all of them are already."""
    if set(map(type, group)) == _ONLY_ENCODED:  # the usual case: a check in C
        return group
    return [
        trace
        if type(trace) is _ENCODED or trace._wire is None
        else stub_of(trace.id, trace._wire, trace._spool)
        for trace in group
    ]


def for_user(traces: Sequence[Trace]) -> Sequence[Trace]:
    """``traces`` with each ``Encoded`` rebuilt in full from its JSON (what ``on_error``
    gets); the same sequence when it holds none."""
    if not any(type(trace) is _ENCODED for trace in traces):
        return traces
    return [_rebuilt(trace) if type(trace) is _ENCODED else trace for trace in traces]


def _rebuilt(stub: Trace) -> Trace:
    payload = stub._wire or b""
    try:
        trace = trace_from_wire(payload)
    except Exception as exc:  # JSON this SDK wrote always reads back; never into the host
        logger.warning("tracing: queued trace %s could not be rebuilt: %s", stub.id, exc)
        trace = start_trace(UNREADABLE_NAME, stub.id, None, None, None, {}, None)
    trace._wire = payload
    trace._spool = stub._spool
    trace._ended = trace._queued = True
    return trace
