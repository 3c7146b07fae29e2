"""The spool arguments are checked at construction, with messages naming them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracing import AsyncTracing


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"spool_dir": 42}, "spool_dir"),
        ({"spool_dir": b"/tmp/x"}, "spool_dir"),
        ({"spool_dir": ""}, "spool_dir"),
        ({"spool_dir": "a\0b"}, "spool_dir"),
        ({"spool_max_bytes": 0}, "spool_max_bytes"),
        ({"spool_max_bytes": -1}, "spool_max_bytes"),
        ({"spool_max_bytes": 1.5e9}, "spool_max_bytes"),
        ({"spool_max_bytes": True}, "spool_max_bytes"),
        ({"spool_fsync": "sometimes"}, "spool_fsync"),
        ({"spool_fsync": None}, "spool_fsync"),
    ],
)
def test_bad_spool_arguments_raise_value_error_naming_them(
    options: dict[str, object], name: str
) -> None:
    """Each bad value raises ValueError with the argument's name in the message."""
    with pytest.raises(ValueError, match=name):
        AsyncTracing(**options)  # type: ignore[arg-type]


def test_good_spool_arguments_do_no_io(tmp_path: Path) -> None:
    """A path (str or PathLike) is accepted, made absolute, and nothing is created yet."""
    target = tmp_path / "not-yet"
    tracer = AsyncTracing(spool_dir=target, spool_max_bytes=2**20, spool_fsync="always")
    assert tracer._config.spool_dir == str(target)
    assert not target.exists()
    for fsync in ("interval", "always", "never"):
        AsyncTracing(spool_dir=str(target), spool_fsync=fsync)
    assert not target.exists()
