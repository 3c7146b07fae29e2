"""The ``headers``, ``protocol`` and ``service_name`` options and the ``OTEL_*``
variables that feed them (README "Sending to OpenTelemetry backends (OTLP)"); used by ``_config``.

``OTEL_EXPORTER_OTLP_HEADERS`` is read as the OpenTelemetry specification writes it
(``k=v,k2=v2``, names and values URL-decoded, blanks around them trimmed) and merged
under ``headers``: a name given in both (in any case) takes the argument's value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import unquote

__all__ = ["BAD_HEADER_VALUE", "PROTOCOLS", "Headers", "resolve_headers", "resolve_service_name"]

PROTOCOLS = ("tracing", "otlp")
DEFAULT_SERVICE_NAME = "unknown_service"
Headers = tuple[tuple[str, str], ...]

# RFC 9110 field-name (a token) and a field value without control characters.
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
BAD_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Set by the SDK on every request; a user value would break the body or its retries.
RESERVED = frozenset(
    {
        "content-type",
        "content-encoding",
        "content-length",
        "transfer-encoding",
        "host",
        "idempotency-key",
        "user-agent",
    }
)


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _checked(source: str, name: object, value: object) -> tuple[str, str]:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{source} has an invalid header name: {name!r}")
    if name.lower() in RESERVED:
        raise ValueError(f"{source} must not set {name!r}: the SDK sets it on every request")
    if not isinstance(value, str) or BAD_HEADER_VALUE.search(value):
        raise ValueError(f"{source} has an invalid value for header {name!r}")
    return name, value.strip(" \t")


def parse_otlp_headers(text: str, source: str = "OTEL_EXPORTER_OTLP_HEADERS") -> Headers:
    """``k=v,k2=v2`` into pairs, URL-decoded; empty members are skipped.

    Raises:
        ValueError: a member without ``=`` or with a bad name or value, naming ``source``.
    """
    pairs = []
    for member in text.split(","):
        if not member.strip():
            continue
        name, sep, value = member.partition("=")
        if not sep:
            raise ValueError(f"{source} must be 'name=value' pairs separated by ',', got {text!r}")
        pairs.append(_checked(source, unquote(name).strip(), unquote(value).strip()))
    return tuple(pairs)


def resolve_headers(headers: Mapping[str, str] | None, protocol: str) -> Headers:
    """``headers`` over ``OTEL_EXPORTER_OTLP_HEADERS`` (read only with ``protocol="otlp"``).

    Raises:
        ValueError: ``headers`` is not a mapping of valid names to str values (or the
            variable is malformed), naming which.
    """
    explicit: Headers = ()
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise ValueError(f"headers must be a mapping of str to str or None, got {headers!r}")
        explicit = tuple(_checked("headers", k, v) for k, v in headers.items())
    env = _env("OTEL_EXPORTER_OTLP_HEADERS") if protocol == "otlp" else None
    if env is None:
        return explicit
    given = {name.lower() for name, _ in explicit}
    merged = [(k, v) for k, v in parse_otlp_headers(env) if k.lower() not in given]
    return (*merged, *explicit)


def resolve_protocol(protocol: object) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be 'tracing' or 'otlp', got {protocol!r}")
    assert isinstance(protocol, str)
    return protocol


def resolve_service_name(service_name: str | None) -> str:
    """``service_name``, else ``OTEL_SERVICE_NAME``, else ``unknown_service``.

    Raises:
        ValueError: ``service_name`` is not a non-empty string.
    """
    if service_name is None:
        return _env("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
    if not isinstance(service_name, str) or not service_name.strip():
        raise ValueError(f"service_name must be a non-empty string or None, got {service_name!r}")
    return service_name
