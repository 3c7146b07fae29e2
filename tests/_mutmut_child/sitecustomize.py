"""Loaded by a test's child process only in mutmut's stats run (see ``tests/_mutmut.py``):
at exit, append the mutated functions this process reached to ``$MUTMUT_CHILD_HITS``."""

import atexit
import os


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


if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    atexit.register(_write_hits)
