"""Bounded gzip inflation (``tracing.collector._body``)."""

from __future__ import annotations

import gzip

import pytest

from tracing.collector._body import BodyError, _Inflater


def inflate(data: bytes, limit: int, chunk: int = 7) -> bytes:
    inflater = _Inflater(limit)
    out = b"".join(inflater.feed(data[i : i + chunk]) for i in range(0, len(data), chunk))
    inflater.finish()
    return out


def test_inflates_in_chunks_and_members() -> None:
    """Small chunks and several gzip members back to back inflate to the whole."""
    data = gzip.compress(b"hello ") + gzip.compress(b"world")
    assert inflate(data, 100) == b"hello world"


def test_bomb_stops_at_the_limit() -> None:
    """A body that inflates past the limit raises 413 without inflating it all."""
    bomb = gzip.compress(b"\0" * 50_000_000)
    with pytest.raises(BodyError) as info:
        inflate(bomb, 1_000_000, chunk=len(bomb))
    assert info.value.status == 413


def test_exact_limit_is_allowed() -> None:
    """A body that inflates to exactly the limit passes."""
    assert len(inflate(gzip.compress(b"x" * 1000), 1000)) == 1000


@pytest.mark.parametrize("data", [b"not gzip at all", gzip.compress(b"abc")[:-4], b""])
def test_corrupt_or_truncated_gzip_is_400(data: bytes) -> None:
    """Not gzip, cut short, or empty: 400."""
    with pytest.raises(BodyError) as info:
        inflate(data, 100)
    assert info.value.status == 400
