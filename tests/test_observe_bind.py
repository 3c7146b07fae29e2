"""``observe()`` binds arguments without ``inspect`` for plain signatures: the result must
be exactly ``Signature.bind`` + ``apply_defaults`` (names, order, defaults, ``self``), and a
call that does not fit the signature must still give None."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from tracing import AsyncTracing
from tracing._capture import capture
from tracing._observe import _Observed


def plain(a: Any, b: Any = 2, *, c: Any = 3, d: Any) -> None: ...
def no_params() -> None: ...
def varargs(a: Any, *rest: Any, **extra: Any) -> None: ...
def posonly(a: Any, /, b: Any = 1) -> None: ...


class Service:
    def method(self, x: Any, y: Any = "y") -> None: ...


CALLS = [
    (plain, (1,), {"d": 4}),
    (plain, (1, 5), {"d": 4, "c": 9}),
    (plain, (), {"a": 1, "d": 4}),
    (plain, (), {"d": 4, "a": 1, "b": 0}),
    (plain, (1,), {}),  # d missing: the call raises, nothing is captured
    (plain, (1, 2, 3), {"d": 4}),  # too many positional arguments
    (plain, (1, 2, 3, 4), {}),  # as many positional as parameters, but c and d keyword-only
    (Service.method, (Service(), 1, 2), {}),  # every parameter positional: no binding
    (Service.method, (Service(), 1, 2, 3), {}),  # one too many
    (plain, (1,), {"a": 1, "d": 4}),  # a given twice
    (plain, (1,), {"d": 4, "zzz": 0}),  # unknown keyword
    (no_params, (), {}),
    (no_params, (1,), {}),
    (no_params, (), {"x": 1}),
    (varargs, (1, 2, 3), {"k": 4}),
    (posonly, (1,), {"b": 2}),
    (posonly, (), {"a": 1}),
    (Service.method, (Service(), 1), {}),
    (Service.method, (Service(),), {"x": 1, "y": None}),
]


def expected(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    items = list(bound.arguments.items())
    if items and items[0][0] in ("self", "cls"):
        items = items[1:]
    return {key: capture(value) for key, value in items}


@pytest.mark.parametrize(("func", "args", "kwargs"), CALLS)
def test_arguments_match_signature_bind(func: Any, args: Any, kwargs: Any) -> None:
    observed = _Observed(AsyncTracing(enabled=False), func, None, True, True)
    got = observed.arguments(args, kwargs)
    want = expected(func, args, kwargs)
    assert got == want
    if want is not None:
        assert list(got or {}) == list(want), "keys in parameter order"
