"""One LLM API call as a span: where it goes in the trace tree, what it records, and the
single place it ends.

The span is a child of the current span of the current trace, made through the same
``Trace.span()`` a user calls; with no current trace it is the one span of a trace of
its own, queued when the call ends. ``finish()`` runs once, in whatever thread or task
sees the end of the call (the request returning, a stream ending, closing, failing or
being collected), and never raises into the caller.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .._context import _trace_var
from .._models import LlmUsage, Span, Trace
from ._content import snapshot
from ._soft import failed

if TYPE_CHECKING:
    from .._client import AsyncTracing

__all__ = ["LlmCall", "Result"]

_perf = time.perf_counter


class Result:
    """What the response said, filled in as it arrives (a stream adds to it per chunk)."""

    __slots__ = (
        "cache_creation",
        "cache_read",
        "completion_tokens",
        "extra",
        "finish_reasons",
        "model",
        "output",
        "prompt_tokens",
        "reasoning",
        "response_id",
    )

    def __init__(self) -> None:
        self.model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] = []
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.cache_read: int | None = None
        self.cache_creation: int | None = None
        self.reasoning: int | None = None
        self.output: Any = None
        self.extra: dict[str, Any] | None = None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if self.model is not None:
            meta["gen_ai.response.model"] = self.model
        if self.response_id is not None:
            meta["gen_ai.response.id"] = self.response_id
        meta["gen_ai.response.finish_reasons"] = self.finish_reasons
        if self.cache_read is not None:
            meta["gen_ai.usage.cache_read.input_tokens"] = self.cache_read
        if self.cache_creation is not None:
            meta["gen_ai.usage.cache_creation.input_tokens"] = self.cache_creation
        if self.reasoning is not None:
            meta["gen_ai.usage.reasoning.output_tokens"] = self.reasoning
        if self.extra:
            meta.update(self.extra)
        return meta


def _as_int(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


class LlmCall:
    """An LLM call in progress: its span, its trace, and how to end them."""

    __slots__ = (
        "capture",
        "done",
        "first_chunk",
        "own_trace",
        "provider",
        "request_model",
        "result",
        "span",
        "started",
        "stream",
        "trace",
        "tracer",
    )

    def __init__(
        self,
        tracer: AsyncTracing,
        *,
        operation: str,
        provider: str,
        request_model: str | None,
        stream: bool,
        capture_content: bool,
        input: Any,
    ) -> None:
        name = f"{operation} {request_model}" if request_model else operation
        parent = _trace_var.get()
        self.own_trace = parent is None
        self.trace: Trace = tracer.trace(name) if parent is None else parent
        metadata: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": request_model,
            "stream": stream,
        }
        self.span: Span = self.trace.span(
            name, input=snapshot(input) if capture_content else None, metadata=metadata
        )
        self.tracer = tracer
        self.provider = provider
        self.request_model = request_model
        self.stream = stream
        self.capture = capture_content
        self.result = Result()
        self.started = _perf()
        self.first_chunk: float | None = None
        self.done = False

    def chunk_seen(self) -> None:
        if self.first_chunk is None:
            self.first_chunk = _perf()

    def finish(self, *, error: BaseException | None = None, incomplete: str | None = None) -> None:
        """End the span (and its own trace) once; later calls do nothing."""
        if self.done:
            return
        self.done = True
        try:
            self._record(error, incomplete)
        except Exception:  # never into the host: the span still ends
            failed("record an LLM call")
            self.span.end()
        if self.own_trace:
            self.tracer.enqueue(self.trace)

    def _record(self, error: BaseException | None, incomplete: str | None) -> None:
        span, result = self.span, self.result
        if not self.own_trace and self.trace._queued:
            # Its trace was sent before the call ended (a stream read after the trace
            # ended): the span already has an end time there; nothing more can go in.
            return
        meta = span.metadata
        meta.update(result.metadata())
        if self.stream and self.first_chunk is not None:
            meta["time_to_first_token"] = self.first_chunk - self.started
        if incomplete is not None:
            meta["stream_incomplete"] = incomplete
        usage = None
        prompt, completion = _as_int(result.prompt_tokens), _as_int(result.completion_tokens)
        if prompt is not None or completion is not None:
            usage = LlmUsage(
                model=result.model or self.request_model or "unknown",
                provider=self.provider,
                prompt_tokens=prompt or 0,
                completion_tokens=completion or 0,
                api_calls_count=1,
            )
        elif error is None:
            meta["usage_missing"] = True
        output = snapshot(result.output) if self.capture and result.output is not None else None
        if error is not None:
            meta["error.type"] = type(error).__name__
            span.end(output=output, llm_usage=usage, error=f"{type(error).__name__}: {error}")
            if self.own_trace:
                self.trace.status = "error"
                self.trace.error = span.error
        else:
            span.end(output=output, llm_usage=usage)
