"""What ``@tracer.observe()`` records of a value: a JSON snapshot, capped at 16 KiB.

Seen end to end: the decorated call's trace goes to the scripted server, and the test
reads what arrived.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import numpy
import pydantic
import pytest

from tests._server import FaultServer
from tests.conftest import MakeTracer
from tracing._capture import MAX_CAPTURE_BYTES

MARKER = "...[truncated by tracing: {size} bytes of JSON]"


async def captured(make_tracer: MakeTracer, server: FaultServer, value: Any) -> Any:
    """What arrives as the input of a call given ``value`` (and as its output)."""
    tracer = make_tracer(flush_at=100)

    @tracer.observe("echo")
    def echo(value: Any) -> Any:
        return value

    echo(value)
    await tracer.flush()
    (trace,) = server.requests[-1].traces
    assert trace["output"] == trace["input"]["value"]
    return trace["input"]["value"]


@pytest.mark.parametrize(
    "value",
    [0, -3, 2.5, True, False, None, 2**70, "", "text", [1, "a", None], {"k": [1.5]}],
)
async def test_json_values_arrive_as_given(
    make_tracer: MakeTracer, server: FaultServer, value: Any
) -> None:
    """Numbers, booleans, None, strings, lists and dicts arrive unchanged."""
    got = await captured(make_tracer, server, value)
    assert got == value
    assert type(got) is type(value)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


@pytest.mark.parametrize(
    "value",
    [
        "x" * (MAX_CAPTURE_BYTES - 2),  # its JSON is exactly the cap
        "é" * ((MAX_CAPTURE_BYTES - 2) // 2),  # two bytes a character
        "\x00" * ((MAX_CAPTURE_BYTES - 2) // 6),  # escaped as \\u0000: six bytes each
        ["y" * 100] * ((MAX_CAPTURE_BYTES - 2) // 104),
    ],
    ids=["ascii", "two-byte", "escaped", "list"],
)
async def test_values_up_to_the_cap_are_kept_whole(
    make_tracer: MakeTracer, server: FaultServer, value: Any
) -> None:
    """A value whose JSON fits in 16 KiB arrives whole."""
    assert _json_size(value) <= MAX_CAPTURE_BYTES
    assert await captured(make_tracer, server, value) == value


@pytest.mark.parametrize(
    "value",
    [
        "x" * (MAX_CAPTURE_BYTES - 1),  # one byte over the cap
        "é" * MAX_CAPTURE_BYTES,
        "\x00" * 3000,  # 3,000 characters, 18,002 bytes of JSON
        "\x00" * ((MAX_CAPTURE_BYTES + 2) // 6),  # 4 bytes of JSON over the cap
        {"k": "v" * MAX_CAPTURE_BYTES},
    ],
    ids=["ascii", "two-byte", "escaped", "escaped-just-over", "dict"],
)
async def test_values_over_the_cap_are_cut_to_it_with_a_marker(
    make_tracer: MakeTracer, server: FaultServer, value: Any
) -> None:
    """A value whose JSON is over 16 KiB arrives as a string of at most 16 KiB: the start
    of its JSON, then a marker with the full size. A character cut in two is left out."""
    size = len(json.dumps(value, ensure_ascii=False).encode()) if isinstance(value, str) else None
    got = await captured(make_tracer, server, value)
    assert isinstance(got, str)
    head, _, tail = got.partition("...[truncated by tracing: ")
    assert tail.endswith(" bytes of JSON]")
    full = int(tail.split()[0])
    if size is not None:
        assert full == size
    assert full > MAX_CAPTURE_BYTES
    encoded = got.encode()
    assert MAX_CAPTURE_BYTES - 3 <= len(encoded) <= MAX_CAPTURE_BYTES
    assert head.startswith('"' if isinstance(value, str) else '{"k":"vvv')


class _Model(pydantic.BaseModel):
    when: datetime
    tags: set[str]
    secret: str

    @pydantic.field_serializer("secret", when_used="json")
    def _hide(self, value: str) -> str:
        return "<hidden in JSON mode>"


class _BrokenDump:
    def model_dump(self, **kwargs: Any) -> Any:
        raise RuntimeError("dump failed")

    def __str__(self) -> str:
        return "broken-dump-as-str"


class _Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


async def test_pydantic_models_use_their_json_dump(
    make_tracer: MakeTracer, server: FaultServer
) -> None:
    """A pydantic model is captured as ``model_dump(mode="json")``; a model_dump that
    raises falls back to ``str()``."""
    model = _Model(when=datetime(2026, 1, 2, tzinfo=UTC), tags={"a"}, secret="s3")
    assert await captured(make_tracer, server, model) == {
        "when": "2026-01-02T00:00:00Z",
        "tags": ["a"],
        "secret": "<hidden in JSON mode>",
    }
    assert await captured(make_tracer, server, _BrokenDump()) == "broken-dump-as-str"


async def test_numpy_arrays_and_numbers_arrive_as_json_numbers(
    make_tracer: MakeTracer, server: FaultServer
) -> None:
    """An embedding as a numpy array (and numpy scalars) is captured as numbers, also in
    a dict with a non-string key, not as the array's printed text."""
    vector = numpy.array([0.25, -1.5, 3.0], dtype=numpy.float32)
    assert await captured(make_tracer, server, vector) == [0.25, -1.5, 3.0]
    assert await captured(make_tracer, server, numpy.int64(7)) == 7
    assert await captured(make_tracer, server, {1: vector}) == {"1": [0.25, -1.5, 3.0]}


async def test_values_json_cannot_encode_are_recorded_not_raised(
    make_tracer: MakeTracer, server: FaultServer
) -> None:
    """Sets, bytes and objects become JSON; a value orjson refuses (a 70-bit integer) is
    recorded as its repr; one whose repr also fails, by its type's name."""
    assert await captured(make_tracer, server, {"s": {1}, "b": b"x"}) == {"s": [1], "b": "x"}
    assert await captured(make_tracer, server, {1: "int key", None: "none"}) == {
        "1": "int key",
        "null": "none",
    }
    # A non-string key and a value JSON lacks, together: both are written, not a repr.
    assert await captured(make_tracer, server, {2: PurePosixPath("/tmp/x"), "s": {3}}) == {
        "2": "/tmp/x",
        "s": [3],
    }
    assert await captured(make_tracer, server, [2**70]) == repr([2**70])
    assert await captured(make_tracer, server, [2**70, _Unrepresentable()]) == (
        "<unrepresentable list>"
    )
