"""The per-module table of a mutation run: ``python -m tests._mutation_table``.

Reads what ``mutmut run`` left in ``mutants/`` (one ``.meta`` file per module) and prints,
for each module, the mutants tried, how many the tests killed (a timeout counts as
killed: the mutant broke the code badly enough to hang it), how many survived, and how
many no selected test reaches; then the names of those not killed, for ``mutmut show``
and for tests/MUTANTS.md.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 24, -24, 36, 37, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def _kind(code: int | None) -> str:
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    return "untried"


def main(root: Path = Path("mutants")) -> int:
    metas = sorted(root.glob("tracing/*.py.meta"))
    if not metas:
        print(f"no mutation results under {root}/: run `make mutate` first")
        return 1
    print(f"{'module':<10} {'tried':>6} {'killed':>7} {'survived':>9} {'no tests':>9} {'share':>7}")
    not_killed: list[str] = []
    for meta in metas:
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        tally = Counter(_kind(code) for code in codes.values())
        tried = tally["killed"] + tally["survived"] + tally["no tests"]
        share = f"{100 * tally['killed'] / tried:.1f}%" if tried else "-"
        name = meta.name.removesuffix(".py.meta")
        print(
            f"{name:<10} {tried:>6} {tally['killed']:>7} {tally['survived']:>9}"
            f" {tally['no tests']:>9} {share:>7}   ({tally['untried']} not tried yet)"
        )
        not_killed += sorted(
            f"{_kind(c):<9} {k}" for k, c in codes.items() if c in SURVIVED | NO_TESTS
        )
    if not_killed:
        print(f"\n{len(not_killed)} not killed:")
        for line in not_killed:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
