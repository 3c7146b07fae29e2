"""The Makefile's virtualenvs, read with ``make -n`` (the commands it would run)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV_TOOLS = ("pytest", "mypy", "ruff", "playwright", "hypothesis")


def planned(target: str, venv: Path) -> list[str]:
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [line for line in done.stdout.splitlines() if " install " in line]


def test_make_demo_installs_what_it_runs_and_nothing_more(tmp_path: Path) -> None:
    """``make demo`` installed the whole development toolchain (pytest, mypy, ruff,
    playwright) before showing anything; it installs the package with its ``demo`` extra."""
    for target in ("demo", "serve"):
        assert planned(target, tmp_path / "venv") == [
            f"{tmp_path}/venv/bin/pip install --quiet -e '.[demo]'"
        ]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert not [dep for dep in extras["demo"] if dep.startswith(DEV_TOOLS)]


def test_make_test_keeps_the_dev_tools(tmp_path: Path) -> None:
    """``make test`` installs the ``dev`` extra, which includes the demo's."""
    assert f"{tmp_path}/venv/bin/pip install --quiet -e '.[dev]'" in planned(
        "test", tmp_path / "venv"
    )
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert "aiotracing[demo]" in extras["dev"]
    assert all(any(dep.startswith(tool) for dep in extras["dev"]) for tool in DEV_TOOLS)
