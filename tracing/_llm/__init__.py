"""LLM client instrumentation: ``tracer.instrument(client)`` and ``uninstrument``.

Neither ``openai`` nor ``anthropic`` is imported here: a client object can only exist
once its package is imported, so the type check reads ``sys.modules``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeVar

from ._hook import install, remove

if TYPE_CHECKING:
    from .._client import AsyncTracing

__all__ = ["instrument", "provider_of", "uninstrument"]

_C = TypeVar("_C")

_CLIENTS = {
    "openai": ("OpenAI", "AsyncOpenAI"),
    "anthropic": ("Anthropic", "AsyncAnthropic"),
}
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")


def _sdk_of(client: Any) -> str | None:
    for package, names in _CLIENTS.items():
        module = sys.modules.get(package)
        if module is None:
            continue
        classes = tuple(getattr(module, name) for name in names if hasattr(module, name))
        if classes and isinstance(client, classes):
            return package
    return None


def provider_of(client: Any, sdk: str) -> str:
    """``gen_ai.provider.name`` from the client's base URL (its class for Azure)."""
    host = str(getattr(getattr(client, "base_url", None), "host", "") or "").lower()
    if sdk == "openai":
        module = sys.modules["openai"]
        azure = tuple(
            getattr(module, name)
            for name in ("AzureOpenAI", "AsyncAzureOpenAI")
            if hasattr(module, name)
        )
        if (azure and isinstance(client, azure)) or host.endswith(_AZURE_HOSTS):
            return "azure.ai.openai"
        if host == "api.openai.com":
            return "openai"
    elif host == "api.anthropic.com":
        return "anthropic"
    return host or sdk


def instrument(tracer: AsyncTracing, client: _C, *, capture_content: bool = True) -> _C:
    """See ``AsyncTracing.instrument``."""
    sdk = _sdk_of(client)
    if sdk is None:
        raise TypeError(
            "instrument() takes an openai.OpenAI, openai.AsyncOpenAI, anthropic.Anthropic "
            f"or anthropic.AsyncAnthropic client, got {type(client).__qualname__}"
        )
    if not isinstance(capture_content, bool):
        raise ValueError(f"capture_content must be a bool, got {capture_content!r}")
    if sdk == "openai":
        from ._openai_responses import ENDPOINTS
    else:
        from ._anthropic import ENDPOINTS
    install(client, tracer, capture_content, provider_of(client, sdk), ENDPOINTS)
    return client


def uninstrument(client: _C) -> _C:
    """See ``AsyncTracing.uninstrument``."""
    remove(client)
    return client
