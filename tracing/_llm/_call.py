"""One LLM API call as a span: where it goes in the trace tree, what it records, and the
single place it ends.

The span is a child of the current span of the current trace, made through the same
``Trace.span()`` a user calls; with no current trace it is the one span of a trace of
its own, queued when the call ends. ``finish()`` runs once, in whatever thread or task
sees the end of the call (the request returning, a stream ending, closing, failing or
being collected), and never raises into the caller.

This runs once per API call, right after the SDK's own millisecond of work has pushed
this code and its data out of the CPU caches: there every Python call and every object
costs several times what a tight loop shows (benchmarks/README.md, "LLM clients"), so
the span's metadata is written in place and the usual record built in few steps.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from .._context import _trace_var
from .._models import LlmUsage, open_span
from .._own_trace import open_own_trace
from ._content import output_snapshot
from ._shapes import SENTINELS
from ._soft import failed

if TYPE_CHECKING:
    from .._client import AsyncTracing

__all__ = ["LlmCall", "Result", "perf", "unreadable_chunk"]

perf = _perf = time.perf_counter
_now = datetime.now


class Result:
    """What the response said, filled in as it arrives (a stream adds to it per chunk)."""

    __slots__ = (
        "cache_creation",
        "cache_read",
        "completion_tokens",
        "extra",
        "finish_reasons",
        "first_chunk",
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
        self.first_chunk: float | None = None  # perf_counter() at a stream's first item


def unreadable_chunk() -> Result:
    """For a stream accumulator whose chunk raised: logs it and gives the accumulator a
    scratch ``Result`` to write the rest of the stream into (so it is not recorded, and
    the stream itself goes on untouched)."""
    failed("read an LLM stream chunk; the rest of that stream is not recorded")
    return Result()


# Request body keys recorded in metadata, under their GenAI semantic-convention names.
_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "stop": "gen_ai.request.stop_sequences",
    "stop_sequences": "gen_ai.request.stop_sequences",
}


class LlmCall(Result):
    """An LLM call in progress: its span, its trace, how to end them, and (as the
    ``Result`` it is) what the response said: one object per call, not two."""

    __slots__ = (
        "capture",
        "done",
        "endpoint",
        "own_trace",
        "provider",
        "request_model",
        "span",
        "started",
        "stream",
        "trace",
        "tracer",
    )

    def __init__(
        self,
        tracer: AsyncTracing,
        endpoint: Any,
        provider: str,
        body: dict[str, Any],
        stream: bool,
        capture_content: bool,
    ) -> None:
        """Start the span for a request ``body`` (which may hold the SDKs' unset
        defaults: ``SENTINELS``; never recorded)."""
        model = body.get("model")
        request_model = model if type(model) is str else None
        operation = endpoint.operation
        name = f"{operation} {request_model}" if request_model else operation
        meta = {  # one dict display: sized once, not grown key by key
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": request_model,
            "stream": stream,
        }
        for key, value in body.items():
            param = _REQUEST_PARAMS.get(key)
            if param is not None and value is not None and type(value).__name__ not in SENTINELS:
                meta[param] = value
        content = endpoint.input(body) if capture_content else None
        trace = _trace_var.get()
        if trace is None:  # a trace of its own, ended and queued with its one span
            self.trace, self.span = open_own_trace(name, tracer, content, meta)
            self.own_trace = True
        else:  # trace.span(name): the name is valid
            self.trace = trace
            self.span = open_span(trace, name, content, meta)
            self.own_trace = False
        self.tracer = tracer
        self.endpoint = endpoint
        self.provider = provider
        self.request_model = request_model
        self.stream = stream
        self.capture = capture_content
        self.done = False
        self.started = _perf() if stream else 0.0  # time to first token: streams only
        # The Result's fields (Result.__init__, without its call).
        self.model = None
        self.response_id = None
        self.finish_reasons = []
        self.prompt_tokens = None
        self.completion_tokens = None
        self.cache_read = None
        self.cache_creation = None
        self.reasoning = None
        self.output = None
        self.extra = None
        self.first_chunk = None

    def finish(self, *, error: BaseException | None = None, incomplete: str | None = None) -> None:
        """End the span (and its own trace) once; later calls do nothing."""
        if self.done:
            return
        self.done = True
        trace = self.trace
        try:
            if self.own_trace or not trace._queued:
                self._record(error, incomplete)
            # else: its trace was sent before the call ended (a stream read after the
            # trace ended): the span already has an end time there; nothing more goes in.
        except Exception:  # never into the host: the span still ends
            failed("record an LLM call")
            self.span.end()
        if self.own_trace:
            # The trace of its own ends with its one span (what enqueue() would stamp).
            if trace.end_time is None:
                trace.end_time = self.span.end_time or _now(UTC)
            trace._ended = True
            self.tracer.enqueue(trace)

    def _record(self, error: BaseException | None, incomplete: str | None) -> None:
        span = self.span
        meta = span.metadata
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
        if self.first_chunk is not None:
            meta["time_to_first_token"] = self.first_chunk - self.started
        if incomplete is not None:
            meta["stream_incomplete"] = incomplete
        usage = _usage(self, self.request_model, self.provider)
        if usage is None and error is None:
            meta["usage_missing"] = True
        output = output_snapshot(self.output) if self.capture else None
        if error is None:
            span.end(output=output, llm_usage=usage)
            return
        meta["error.type"] = type(error).__name__
        span.end(output=output, llm_usage=usage, error=f"{type(error).__name__}: {error}")
        if self.own_trace:
            self.trace.status = "error"
            self.trace.error = span.error


def _usage(result: Result, request_model: str | None, provider: str) -> LlmUsage | None:
    prompt, completion = result.prompt_tokens, result.completion_tokens
    if type(prompt) is not int or prompt < 0:
        prompt = None
    if type(completion) is not int or completion < 0:
        completion = None
    if prompt is None and completion is None:
        return None
    # LlmUsage(model=, provider=, prompt_tokens=, completion_tokens=, api_calls_count=1)
    # without attrs' __init__ and its validators (the counts were checked just above),
    # through the slots' own descriptors: object.__setattr__ (LlmUsage is frozen) checks
    # the class's MRO on every call, at twice the cost.
    usage: LlmUsage = _new_object(LlmUsage)
    _set_model(usage, result.model or request_model or "unknown")
    _set_provider(usage, provider)
    _set_prompt(usage, prompt or 0)
    _set_completion(usage, completion or 0)
    _set_calls(usage, 1)
    return usage


_new_object = object.__new__
_USAGE_FIELDS = ["model", "provider", "prompt_tokens", "completion_tokens", "api_calls_count"]
if [field.name for field in attrs.fields(LlmUsage)] != _USAGE_FIELDS:  # pragma: no cover
    raise RuntimeError("_usage() must set every field of LlmUsage: update it")
_set_model, _set_provider, _set_prompt, _set_completion, _set_calls = (
    LlmUsage.__dict__[name].__set__ for name in _USAGE_FIELDS
)
