"""A part deleted while its tracer writes to it (``rm -rf`` of ``spool_dir``, a cleanup job).

Writes to the files the writer holds open still succeed after their directory is gone, so
without a look it would go on appending to files no one can read again, and
``shutdown()`` would say their traces are kept. So the writer looks every 2 s, with its
scan for orphaned parts: one ``fstat`` of the part's lock, whose link count drops to 0
when it is deleted (not every cycle: each system call the writer makes is one more wait
for the GIL, and one ``fstat`` a cycle took the end-to-end throughput with the spool
from 0.74 to 0.58-0.63 of the spool off, two runs of 5 rounds against the code before
it; benchmarks/RESULTS.md, session 20). Then the
records its part held on disk only are counted lost (``failed``, with one warning: their
bytes are gone), the queued traces whose records were there count as having none (if they
cannot be sent, ``shutdown()`` fails them and passes them to ``on_error`` instead of
keeping them), and the next cycle makes a new part, and ``spool_dir`` again if need be.
"""

from __future__ import annotations

import os
from typing import Any

from ._spool_part import _SLOT_SHIFT, Part, split_ref

__all__ = ["deleted", "mark_gone", "own_record", "record_gone"]

_GONE: set[int] = set()  # slots of the parts deleted under their writer (this process)


def deleted(part: Part) -> bool:
    """Whether the part's directory was deleted (its lock has no link left)."""
    try:
        return os.fstat(part.lock_fd).st_nlink == 0
    except OSError:
        return True


def mark_gone(part: Part) -> None:
    _GONE.add(part.slot)


def record_gone(ref: Any) -> bool:
    """Whether a queued trace's record (its ``_spool`` ref) was in a deleted part."""
    return bool(_GONE) and type(ref) is int and (ref >> _SLOT_SHIFT) in _GONE


def own_record(ref: Any) -> bool:
    """Whether a queued trace's ref is a record in its tracer's own part (not an adopted
    one's): what is lost with the part when it is deleted."""
    if type(ref) is not int:
        return False
    part = split_ref(ref)[0]
    return part is not None and part.own
