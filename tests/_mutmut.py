"""Lets ``make mutate`` see what subprocess tests exercise (a no-op otherwise).

mutmut picks the tests to run against a mutant from the functions each test reached in
its "stats" run, recorded in the pytest process. Code that runs only in a child (exit
delivery, fork handling) would look untested, and its mutants would never be tried. In
that run, children get ``_mutmut_child`` on their ``PYTHONPATH``; its ``sitecustomize``
writes the functions the child reached to a file, and ``collect()`` credits them to the
test that started the child. Relies on mutmut 3.8's ``state()`` (pinned in the Makefile).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["child_paths", "collect"]

HITS_VARIABLE = "MUTMUT_CHILD_HITS"
_HOOK = Path(__file__).parent / "_mutmut_child"


def _collecting() -> bool:
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


def child_paths() -> list[str]:
    """Extra ``PYTHONPATH`` entries for a child: the hook, only in mutmut's stats run."""
    if not _collecting():
        return []
    if HITS_VARIABLE not in os.environ:
        handle, path = tempfile.mkstemp(prefix="mutmut-child-hits-")
        os.close(handle)
        os.environ[HITS_VARIABLE] = path
    return [str(_HOOK)]


def collect(nodeid: str) -> None:
    """Credit the functions children reached during test ``nodeid`` to that test."""
    path = os.environ.get(HITS_VARIABLE)
    if not _collecting() or path is None:
        return
    hits = Path(path)
    names = set(hits.read_text().split())
    hits.write_text("")
    if not names:
        return
    from mutmut.state import state  # type: ignore[import-not-found]  # only under mutmut

    for name in names:
        state().tests_by_mangled_function_name[name].add(nodeid.removeprefix("mutants/"))
