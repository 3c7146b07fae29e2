"""Failures inside the instrumentation: logged, never raised, never a flood.

The first failure of each kind is logged with its traceback (what a bug report needs);
repeats are counted into one rate-limited WARNING line, so a response shape the code
cannot read does not write a traceback per call.
"""

from __future__ import annotations

import threading

from .._log import RateLimitedWarning, logger

__all__ = ["failed"]

_seen: set[str] = set()
_lock = threading.Lock()
_repeats = RateLimitedWarning("tracing: %d more LLM instrumentation failure(s)")


def failed(what: str) -> None:
    """Report the exception being handled: ``what`` says what could not be done."""
    with _lock:
        first = what not in _seen
        _seen.add(what)
    if first:
        logger.exception("tracing could not %s (later ones are counted)", what)
    else:
        _repeats.hit(reason=what)
