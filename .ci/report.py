"""Say what the test run saw, from pytest's JUnit XML: the failed tests by name, then a
closing tally. Exits 1 when the file is missing or no test ran, so CI never passes on
nothing; the exit code of the run itself is .ci/run's to keep."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(path: Path) -> int:
    if not path.is_file():
        print(f"ci: {path} is missing: pytest did not run to its end")
        return 1
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    failed: list[str] = []
    total = skipped = 0
    for suite in suites:
        for case in suite.iter("testcase"):
            total += 1
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(name)
            elif case.find("skipped") is not None:
                skipped += 1
    if failed:
        print(f"ci: {len(failed)} failed test(s):")
        for name in failed:
            print(f"  FAILED {name}")
    passed = total - len(failed) - skipped
    print(f"junit: {passed} passed, {len(failed)} failed, {skipped} skipped")
    if total == 0:
        print("ci: no test ran")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".ci-out/junit.xml")))
