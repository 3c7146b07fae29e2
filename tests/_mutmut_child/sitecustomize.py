"""Loaded by a test's child process only in mutmut's stats run (see ``tests/_mutmut.py``):
at exit, append the mutated functions this process reached to ``$MUTMUT_CHILD_HITS``.

Also at ``os._exit()``, which skips atexit: a forked child ends that way, and what it ran
(the SDK's after-fork handlers) would not be credited otherwise."""

import atexit
import os
from typing import NoReturn


def _write_hits() -> None:
    path = os.environ.get("MUTMUT_CHILD_HITS")
    if not path:
        return
    try:
        from mutmut.state import state  # type: ignore[import-not-found]
    except ImportError:
        return
    names = sorted(state()._stats)
    if names:
        with open(path, "a") as out:
            out.write("\n".join(names) + "\n")


_real_exit = os._exit


def _exit(status: int) -> NoReturn:
    _write_hits()
    _real_exit(status)


if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    atexit.register(_write_hits)
    os._exit = _exit
