"""An asyncio-native tracing SDK for LLM and agent applications.

Quick start::

    from tracing import AsyncTracing

    async with AsyncTracing(endpoint="http://127.0.0.1:7070") as tracer:
        async with tracer.trace("summarize", input=text) as trace:
            with trace.span("llm") as span:
                span.end(output=await call_llm(text))
"""

from __future__ import annotations

from ._client import AsyncTracing
from ._context import current_span, current_trace
from ._exceptions import BatchError, DeliveryError, TracingError
from ._models import ApiResponse, BatchResult, LlmUsage, Span, Stats, Trace
from ._version import __version__

__all__ = [
    "ApiResponse",
    "AsyncTracing",
    "BatchError",
    "BatchResult",
    "DeliveryError",
    "LlmUsage",
    "Span",
    "Stats",
    "Trace",
    "TracingError",
    "__version__",
    "current_span",
    "current_trace",
]
