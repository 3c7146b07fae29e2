"""Argument validation and environment resolution (``_config``)."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
from typing import Any

import aiohttp
import pytest

from tests._server import FaultServer
from tracing import AsyncTracing, Trace

BAD: list[tuple[str, Any]] = [
    ("flush_at", 0),
    ("flush_at", -1),
    ("flush_at", 1.5),
    ("flush_at", True),
    ("flush_at", 20_001),  # above max_queue_size=10_000
    ("flush_interval", -0.1),
    ("flush_interval", float("nan")),
    ("flush_interval", float("inf")),
    ("flush_interval", "5"),
    ("timeout", 0),
    ("timeout", -1),
    ("timeout", None),
    ("max_retries", -1),
    ("max_retries", 2.0),
    ("max_batch_size", 0),
    ("max_batch_size", None),
    ("max_queue_size", 0),
    ("max_queue_size", "big"),
    ("max_concurrency", 0),
    ("max_concurrency", 1.5),
    ("rate_limit", 0),
    ("rate_limit", -2),
    ("rate_limit", "fast"),
    ("retry_backoff", -0.5),
    ("retry_backoff", float("nan")),
    ("retry_backoff_max", -1),
    ("retry_backoff_max", 0.1),  # below retry_backoff=0.5
    ("compression", "brotli"),
    ("compression", "GZIP"),
    ("compression", True),
    ("session", "not a session"),
    ("on_error", "not callable"),
    ("enabled", "yes"),
    ("enabled", 1),
    ("endpoint", "ftp://example.com"),
    ("endpoint", "not a url"),
    ("endpoint", "http://"),
    ("endpoint", "http://host/path?q=1"),
    ("endpoint", 42),
    ("endpoint", "http://127.0.0.1:70700"),
    ("endpoint", "http://127.0.0.1:0"),
    ("endpoint", "http://host:http"),
    ("endpoint", "http://:7070"),
    ("publishable_key", ""),
    ("publishable_key", "   "),
    ("publishable_key", 123),
    ("sample_rate", -0.1),
    ("sample_rate", 1.5),
    ("mask", 3),
]


@pytest.mark.parametrize(("argument", "value"), BAD, ids=[f"{a}={v!r}" for a, v in BAD])
def test_bad_argument_raises_value_error_naming_it(argument: str, value: Any) -> None:
    """A bad value raises ValueError at construction whose message names the argument."""
    with pytest.raises(ValueError, match=argument):
        AsyncTracing(**{argument: value})


def test_arguments_are_keyword_only() -> None:
    """Positional arguments are refused."""
    with pytest.raises(TypeError):
        AsyncTracing("http://127.0.0.1:1")  # type: ignore[call-arg]


GOOD: list[tuple[str, Any]] = [
    ("flush_at", 1),
    ("flush_at", 10_000),
    ("flush_interval", 0),
    ("flush_interval", 0.25),
    ("timeout", 0.01),
    ("max_retries", 0),
    ("max_batch_size", 1),
    ("max_queue_size", 20),
    ("max_concurrency", 1),
    ("rate_limit", 0.5),
    ("rate_limit", 100),
    ("retry_backoff", 0),
    ("retry_backoff_max", 0.5),
    ("compression", None),
    ("compression", "gzip"),
    ("on_error", lambda exc, traces: None),
    ("enabled", False),
    ("sample_rate", 0),
    ("sample_rate", 1),
]


@pytest.mark.parametrize(("argument", "value"), GOOD, ids=[f"{a}={v!r}" for a, v in GOOD])
def test_boundary_values_are_accepted(argument: str, value: Any) -> None:
    """Values at the edge of each range are accepted and kept as given."""
    assert getattr(AsyncTracing(**{argument: value})._config, argument) == value


_AUDITED: list[str] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _AUDITED is not None and event.split(".")[0] in _IO_EVENTS:
        _AUDITED.append(event)


_IO_EVENTS = {"socket", "open", "subprocess", "os", "sqlite3", "urllib", "http"}
sys.addaudithook(_audit)  # audit hooks cannot be removed: this one records only when asked


def test_construction_needs_no_event_loop_and_does_no_io() -> None:
    """Constructing outside any loop opens no socket or file, starts no thread or loop."""
    global _AUDITED
    threads = set(threading.enumerate())
    _AUDITED = []
    try:
        tracer = AsyncTracing(endpoint="http://example.invalid:9", compression="gzip")
    finally:
        audited, _AUDITED = _AUDITED, None
    assert audited == []
    assert set(threading.enumerate()) == threads
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    assert "state=new" in repr(tracer)
    assert tracer.stats().enqueued == 0


def test_default_endpoint_is_the_collectors_address() -> None:
    """Without argument or env var the endpoint is the collector's default."""
    assert AsyncTracing()._config.batch_url == "http://127.0.0.1:7070/api/traces/batch"


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://h:1", "http://h:1/api/traces/batch"),
        ("http://h:1/", "http://h:1/api/traces/batch"),
        ("http://h:1/prefix", "http://h:1/prefix/api/traces/batch"),
        ("http://h:1/prefix/", "http://h:1/prefix/api/traces/batch"),
        ("https://h/a/b//", "https://h/a/b/api/traces/batch"),
    ],
)
def test_endpoint_trailing_slash_and_prefix(endpoint: str, url: str) -> None:
    """A trailing slash is harmless and a path prefix is kept."""
    assert AsyncTracing(endpoint=endpoint)._config.batch_url == url


def test_env_endpoint_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRACING_ENDPOINT and TRACING_PUBLISHABLE_KEY fill in missing arguments."""
    monkeypatch.setenv("TRACING_ENDPOINT", "http://env-host:1234/p/")
    monkeypatch.setenv("TRACING_PUBLISHABLE_KEY", "pk_env")
    config = AsyncTracing()._config
    assert config.batch_url == "http://env-host:1234/p/api/traces/batch"
    assert config.publishable_key == "pk_env"


def test_arguments_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit arguments take precedence over the environment."""
    monkeypatch.setenv("TRACING_ENDPOINT", "http://env-host:1234")
    monkeypatch.setenv("TRACING_PUBLISHABLE_KEY", "pk_env")
    config = AsyncTracing(endpoint="http://arg:1", publishable_key="pk_arg")._config
    assert config.endpoint == "http://arg:1"
    assert config.publishable_key == "pk_arg"


def test_bad_env_endpoint_names_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed TRACING_ENDPOINT raises ValueError naming the variable and endpoint."""
    monkeypatch.setenv("TRACING_ENDPOINT", "nonsense")
    with pytest.raises(ValueError, match=r"^TRACING_ENDPOINT: endpoint must be an http"):
        AsyncTracing()
    monkeypatch.setenv("TRACING_ENDPOINT", "http://127.0.0.1:70700")
    with pytest.raises(ValueError, match=r"^TRACING_ENDPOINT: endpoint must have a port"):
        AsyncTracing()


def test_an_argument_error_does_not_blame_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad ``endpoint=`` names the argument only, even with TRACING_ENDPOINT set."""
    monkeypatch.setenv("TRACING_ENDPOINT", "http://127.0.0.1:7070")
    with pytest.raises(ValueError, match=r"^endpoint must have a port from 1 to 65535"):
        AsyncTracing(endpoint="http://127.0.0.1:70700")


def test_an_impossible_port_fails_at_construction_not_at_send() -> None:
    """``http://127.0.0.1:70700`` was accepted and then failed every send."""
    with pytest.raises(ValueError, match=re.escape("'http://127.0.0.1:70700'")):
        AsyncTracing(endpoint="http://127.0.0.1:70700")
    assert AsyncTracing(endpoint="http://127.0.0.1:65535")._config.endpoint.endswith(":65535")


def test_key_never_in_repr() -> None:
    """The publishable key appears in no repr of the tracer or its config."""
    tracer = AsyncTracing(publishable_key="pk_secret_123")
    assert "pk_secret_123" not in repr(tracer)
    assert "pk_secret_123" not in repr(tracer._config)
    assert "pk_secret_123" not in str(tracer._config)


async def test_user_session_is_used_and_not_closed(server: FaultServer) -> None:
    """A user's ClientSession is used for sending and left open after shutdown."""
    async with aiohttp.ClientSession() as session:
        tracer = AsyncTracing(endpoint=server.url, session=session, flush_interval=0)
        await tracer.send_batch([Trace("t")])
        await tracer.shutdown()
        assert not session.closed
    assert len(server.requests) == 1


@pytest.mark.parametrize("timeout", [-1, -0.001, float("nan")])
async def test_shutdown_timeout_validation_names_timeout(timeout: float) -> None:
    """shutdown(timeout=) below 0 or NaN raises ValueError naming timeout."""
    tracer = AsyncTracing()
    with pytest.raises(ValueError, match="timeout"):
        await tracer.shutdown(timeout=timeout)
    assert "state=new" in repr(tracer)


def test_no_log_lines_at_construction(caplog: pytest.LogCaptureFixture) -> None:
    """Construction is quiet."""
    with caplog.at_level(logging.DEBUG, logger="tracing"):
        AsyncTracing(publishable_key="pk")
    assert caplog.records == []
