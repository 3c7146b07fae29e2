"""The 0.2 options ``protocol``, ``headers`` and ``service_name``, and the ``OTEL_*``
variables (``_headers``, ``_config``): values, precedence, and ValueError naming the
argument."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tracing import AsyncTracing
from tracing._headers import parse_otlp_headers


def test_defaults() -> None:
    """protocol "tracing", no extra headers, service name "unknown_service"."""
    config = AsyncTracing()._config
    assert (config.protocol, config.headers, config.service_name) == (
        "tracing",
        (),
        "unknown_service",
    )


@pytest.mark.parametrize("protocol", ["otlp/http", "OTLP", "json", "", None, 1])
def test_bad_protocol(protocol: Any) -> None:
    """Anything but "tracing" or "otlp" is a ValueError naming protocol."""
    with pytest.raises(ValueError, match=r"^protocol must be 'tracing' or 'otlp'"):
        AsyncTracing(protocol=protocol)


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ([("a", "b")], "headers must be a mapping"),
        ("a=b", "headers must be a mapping"),
        ({"a": 1}, "headers has an invalid value for header 'a'"),
        ({"a": "x\r\nInjected: 1"}, "headers has an invalid value"),
        ({"a": "x\n"}, "headers has an invalid value"),
        ({"bad name": "x"}, "headers has an invalid header name"),
        ({"": "x"}, "headers has an invalid header name"),
        ({1: "x"}, "headers has an invalid header name"),
        ({"Content-Type": "text/plain"}, "headers must not set 'Content-Type'"),
        ({"content-encoding": "br"}, "headers must not set"),
        ({"Idempotency-Key": "k"}, "headers must not set"),
        ({"User-Agent": "me"}, "headers must not set"),
    ],
)
def test_bad_headers(headers: Any, match: str) -> None:
    """A malformed ``headers`` value, or one the SDK must set itself, raises naming headers."""
    with pytest.raises(ValueError, match=match):
        AsyncTracing(headers=headers, protocol="otlp")


def test_headers_kept_in_order_and_hidden_in_repr() -> None:
    """Headers are kept as given (values stripped of blanks); repr shows names only."""
    config = AsyncTracing(headers={"X-A": " 1 ", "Authorization": "Basic secret"})._config
    assert config.headers == (("X-A", "1"), ("Authorization", "Basic secret"))
    assert "secret" not in repr(config)
    assert "Authorization" in repr(config)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=b", (("a", "b"),)),
        (" a = b , c=d ", (("a", "b"), ("c", "d"))),
        ("api-key=a%20b%3Dc%2C", (("api-key", "a b=c,"),)),
        ("a=b,,c=", (("a", "b"), ("c", ""))),
        ("a=b=c", (("a", "b=c"),)),
        ("", ()),
    ],
)
def test_parse_otlp_headers(text: str, expected: tuple[tuple[str, str], ...]) -> None:
    """``k=v,k2=v2``, URL-decoded, blanks trimmed, empty members skipped."""
    assert parse_otlp_headers(text) == expected


@pytest.mark.parametrize("text", ["novalue", "a=b,broken", "bad name=x", "a=x%0d%0aX: y"])
def test_bad_otel_headers_variable(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed OTEL_EXPORTER_OTLP_HEADERS raises a ValueError naming the variable."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", text)
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_HEADERS"):
        AsyncTracing(protocol="otlp")
    AsyncTracing()  # not read by the JSON protocol: no error


def test_otel_headers_merge_under_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variable's headers come first; a name also in ``headers`` keeps the argument's."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "A=env,b=env")
    config = AsyncTracing(protocol="otlp", headers={"a": "explicit"})._config
    assert config.headers == (("b", "env"), ("a", "explicit"))


def test_endpoint_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    """otlp: argument, then OTEL_EXPORTER_OTLP_ENDPOINT, then TRACING_ENDPOINT, then the
    collector's default; the JSON protocol never reads the OTEL variable."""
    assert AsyncTracing(protocol="otlp")._config.endpoint == "http://127.0.0.1:7070"
    monkeypatch.setenv("TRACING_ENDPOINT", "http://tracing-env:1")
    assert AsyncTracing(protocol="otlp")._config.endpoint == "http://tracing-env:1"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel-env:4318/prefix/")
    assert AsyncTracing(protocol="otlp")._config.endpoint == "https://otel-env:4318/prefix"
    assert AsyncTracing()._config.endpoint == "http://tracing-env:1"
    assert AsyncTracing(protocol="otlp", endpoint="http://arg:2")._config.endpoint == "http://arg:2"


def test_bad_otel_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad OTEL_EXPORTER_OTLP_ENDPOINT is a ValueError naming the variable."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")
    with pytest.raises(ValueError, match=r"^OTEL_EXPORTER_OTLP_ENDPOINT: endpoint must be an"):
        AsyncTracing(protocol="otlp")


def test_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The argument, else OTEL_SERVICE_NAME (blank ignored), else "unknown_service"."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "  ")
    assert AsyncTracing(protocol="otlp")._config.service_name == "unknown_service"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing")
    assert AsyncTracing(protocol="otlp")._config.service_name == "billing"
    assert AsyncTracing(service_name="api")._config.service_name == "api"


@pytest.mark.parametrize("name", ["", "   ", 3, b"svc"])
def test_bad_service_name(name: Any) -> None:
    """An empty or non-string service_name raises naming service_name."""
    with pytest.raises(ValueError, match=r"^service_name must be a non-empty string"):
        AsyncTracing(service_name=name)


def test_import_and_json_mode_never_load_the_otlp_modules() -> None:
    """``import tracing`` (and a JSON-mode tracer) loads neither the OTLP encoder nor any
    protobuf package; an OTLP tracer loads the encoder, still without protobuf."""
    show = (
        "print(sorted(m for m in sys.modules if 'otlp' in m or m == 'tracing._pb'"
        " or m.startswith(('google', 'opentelemetry'))))\n"
    )
    code = (
        "import sys, asyncio, tracing\n"
        "async def main(mode):\n"
        "    async with tracing.AsyncTracing(protocol=mode, endpoint='http://127.0.0.1:9'):\n"
        "        pass\n"
        f"asyncio.run(main('tracing'))\n{show}asyncio.run(main('otlp'))\n{show}"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert out == [
        "[]",
        "['tracing._otlp', 'tracing._otlp_attrs', 'tracing._otlp_encode', 'tracing._pb']",
    ]
