"""Validated, frozen configuration of an ``AsyncTracing``.

Every keyword argument and ``TRACING_*`` environment variable is resolved here once;
errors name the argument and the value. Nothing here does I/O or needs an event loop.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import attrs

from ._headers import (
    BAD_HEADER_VALUE,
    Headers,
    resolve_headers,
    resolve_protocol,
    resolve_service_name,
)
from ._wire import DEFAULT_ENDPOINT

if TYPE_CHECKING:
    from ._models import Trace

__all__ = ["Config", "ErrorCallback", "Mask", "resolve_config"]

ErrorCallback = Callable[[Exception, "Sequence[Trace]"], None]
Mask = Callable[[Any], Any]
COMPRESSIONS = (None, "gzip")
SPOOL_FSYNC = ("interval", "always", "never")
SPOOL_MIN_BYTES = 1


@attrs.frozen
class Config:
    endpoint: str
    publishable_key: str | None = attrs.field(repr=lambda key: "None" if key is None else "'***'")
    flush_at: int
    flush_interval: float
    timeout: float
    max_retries: int
    max_batch_size: int
    max_queue_size: int
    max_concurrency: int
    rate_limit: float | None
    retry_backoff: float
    retry_backoff_max: float
    compression: str | None
    session: aiohttp.ClientSession | None
    on_error: ErrorCallback | None
    enabled: bool
    sample_rate: float
    mask: Mask | None
    # 0.2, OTLP: the wire protocol, extra headers (names kept, values hidden in repr).
    protocol: str = "tracing"
    headers: Headers = attrs.field(default=(), repr=lambda h: repr([name for name, _ in h]))
    service_name: str = "unknown_service"
    spool_dir: str | None = None
    spool_max_bytes: int = 256 * 2**20
    spool_fsync: str = "interval"

    @property
    def batch_url(self) -> str:
        return self.endpoint + "/api/traces/batch"


def _env(name: str) -> str | None:
    """A ``TRACING_*`` variable, or None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def _int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def _number(name: str, value: object, *, minimum: float, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < minimum or (strict and value == minimum) or math.isinf(value):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _endpoint(value: str | None, protocol: str = "tracing") -> str:
    """The argument, else (OTLP only) ``OTEL_EXPORTER_OTLP_ENDPOINT``, else
    ``TRACING_ENDPOINT``, else the collector's default address."""
    if value is not None:
        return _check_endpoint(value, "endpoint")
    names = ("OTEL_EXPORTER_OTLP_ENDPOINT", "TRACING_ENDPOINT")
    for env_name in names if protocol == "otlp" else names[1:]:
        env = _env(env_name)
        if env is not None:
            return _check_endpoint(env, f"{env_name}: endpoint")
    return DEFAULT_ENDPOINT


def _check_endpoint(raw: object, name: str) -> str:
    """``raw`` as a base URL; errors start with ``name``, which says where it came from
    (``TRACING_ENDPOINT: endpoint`` for the environment variable)."""
    if not isinstance(raw, str):
        raise ValueError(f"{name} must be a string URL, got {raw!r}")
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not have a query or fragment, got {raw!r}")
    try:
        port = parts.port  # ValueError past 65535 or for a port that is not a number
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{name} must have a port from 1 to 65535 (or none), got {raw!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _callable_or_none(name: str, value: object) -> Any:
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be callable or None, got {value!r}")
    return value


def _spool_dir(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes) or not isinstance(value, str | os.PathLike):
        raise ValueError(f"spool_dir must be None or a directory path, got {value!r}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path.strip() or "\0" in path:
        raise ValueError(f"spool_dir must be None or a directory path, got {value!r}")
    return os.path.abspath(os.path.expanduser(path))


def _spool(spool_dir: object, max_bytes: object, fsync: object) -> dict[str, Any]:
    if fsync not in SPOOL_FSYNC:
        raise ValueError(f"spool_fsync must be 'interval', 'always' or 'never', got {fsync!r}")
    return {
        "spool_dir": _spool_dir(spool_dir),
        "spool_max_bytes": _int("spool_max_bytes", max_bytes, SPOOL_MIN_BYTES),
        "spool_fsync": fsync,
    }


def resolve_config(
    *,
    endpoint: str | None,
    publishable_key: str | None,
    flush_at: int,
    flush_interval: float,
    timeout: float,
    max_retries: int,
    max_batch_size: int,
    max_queue_size: int,
    max_concurrency: int,
    rate_limit: float | None,
    retry_backoff: float,
    retry_backoff_max: float,
    compression: str | None,
    session: aiohttp.ClientSession | None,
    on_error: ErrorCallback | None,
    enabled: bool,
    sample_rate: float,
    mask: Mask | None,
    protocol: str = "tracing",
    headers: Mapping[str, str] | None = None,
    service_name: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    spool_max_bytes: int = 256 * 2**20,
    spool_fsync: str = "interval",
) -> Config:
    """Check every argument and fill in the environment.

    Raises:
        ValueError: naming the first bad argument and its value.
    """
    key = publishable_key if publishable_key is not None else _env("TRACING_PUBLISHABLE_KEY")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ValueError("publishable_key must be a non-empty string or None")
    if key is not None and BAD_HEADER_VALUE.search(key.strip()):
        # Sent as a header: a control character would fail every send, or split it.
        raise ValueError("publishable_key must not contain control characters")
    max_queue_size = _int("max_queue_size", max_queue_size, 1)
    flush_at = _int("flush_at", flush_at, 1)
    if flush_at > max_queue_size:
        raise ValueError(f"flush_at must be <= max_queue_size ({max_queue_size}), got {flush_at!r}")
    backoff_first = _number("retry_backoff", retry_backoff, minimum=0)
    backoff_max = _number("retry_backoff_max", retry_backoff_max, minimum=0)
    if backoff_max < backoff_first:
        raise ValueError(
            f"retry_backoff_max must be >= retry_backoff ({retry_backoff!r}), "
            f"got {retry_backoff_max!r}"
        )
    if rate_limit is not None:
        rate_limit = _number("rate_limit", rate_limit, minimum=0, strict=True)
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be None or 'gzip', got {compression!r}")
    if session is not None and not isinstance(session, aiohttp.ClientSession):
        raise ValueError(f"session must be an aiohttp.ClientSession or None, got {session!r}")
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be a bool, got {enabled!r}")
    protocol = resolve_protocol(protocol)
    rate = _number("sample_rate", sample_rate, minimum=0)
    if rate > 1:
        raise ValueError(f"sample_rate must be between 0 and 1, got {sample_rate!r}")
    return Config(
        endpoint=_endpoint(endpoint, protocol),
        publishable_key=key.strip() if key is not None else None,
        flush_at=flush_at,
        flush_interval=_number("flush_interval", flush_interval, minimum=0),
        timeout=_number("timeout", timeout, minimum=0, strict=True),
        max_retries=_int("max_retries", max_retries, 0),
        max_batch_size=_int("max_batch_size", max_batch_size, 1),
        max_queue_size=max_queue_size,
        max_concurrency=_int("max_concurrency", max_concurrency, 1),
        rate_limit=rate_limit,
        retry_backoff=backoff_first,
        retry_backoff_max=backoff_max,
        compression=compression,
        session=session,
        on_error=_callable_or_none("on_error", on_error),
        enabled=enabled,
        sample_rate=rate,
        mask=_callable_or_none("mask", mask),
        protocol=protocol,
        headers=resolve_headers(headers, protocol),
        service_name=resolve_service_name(service_name),
        **_spool(spool_dir, spool_max_bytes, spool_fsync),
    )
