"""The per-module table of a mutation run: ``python -m tests._mutation_table``.

Reads what ``mutmut run`` left in ``mutants/`` (one ``.meta`` file per module) and prints,
for each module, how many mutants the tests killed (a timeout counts as killed: the
mutant broke the code badly enough to hang it) out of those tried, and the survivors'
names, for ``mutmut show NAME`` and for tests/MUTANTS.md.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout"}
KILLED |= {255: "timeout", 37: "type check"}
NOT_KILLED = {0: "survived", 5: "no tests", 33: "no tests"}


def main(root: Path = Path("mutants")) -> int:
    metas = sorted(root.glob("tracing/*.py.meta"))
    if not metas:
        print(f"no mutation results under {root}/: run `make mutate` first")
        return 1
    print(f"{'module':<12} {'killed':>7} {'tried':>6} {'share':>7} {'untried':>8}")
    survivors: list[str] = []
    for meta in metas:
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        tally = Counter(
            "killed" if c in KILLED else "not" if c in NOT_KILLED else "untried"
            for c in codes.values()
        )
        tried = tally["killed"] + tally["not"]
        share = f"{100 * tally['killed'] / tried:.1f}%" if tried else "-"
        name = meta.name.removesuffix(".py.meta")
        print(f"{name:<12} {tally['killed']:>7} {tried:>6} {share:>7} {tally['untried']:>8}")
        survivors += sorted(k for k, c in codes.items() if c in NOT_KILLED)
    if survivors:
        print(f"\n{len(survivors)} not killed:")
        for name in survivors:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
