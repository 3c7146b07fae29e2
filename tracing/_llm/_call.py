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
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from .._context import _trace_var
from .._models import LlmUsage
from ._content import output_snapshot
from ._lazy import SPAN_SLOTS, at_ns
from ._records import open_child_span, open_own_trace
from ._shapes import SENTINELS
from ._soft import failed

if TYPE_CHECKING:
    from .._client import AsyncTracing

__all__ = ["LlmCall", "Result", "open_call", "perf", "unreadable_chunk"]

perf = _perf = time.perf_counter
_time_ns = time.time_ns
put_start = SPAN_SLOTS["start_time"].put
put_metadata = SPAN_SLOTS["metadata"].put
put_input = SPAN_SLOTS["input"].put
put_output = SPAN_SLOTS["output"].put
put_usage = SPAN_SLOTS["llm_usage"].put
put_end = SPAN_SLOTS["end_time"].put
get_metadata = SPAN_SLOTS["metadata"].get
_get_end = SPAN_SLOTS["end_time"].get


def span_ended(span: Any) -> bool:
    """Whether the span has an end time (its raw slot: unset until the end is written)."""
    try:
        return _get_end(span) is not None
    except AttributeError:
        return False


class Result:
    """What the response said, filled in as it arrives (a stream adds to it per chunk).

    The fields' defaults are the class's: a call sets only what its response says (each
    assignment on the call's path runs cold; see the module docstring)."""

    model: str | None = None
    response_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cache_read: int | None = None
    cache_creation: int | None = None
    reasoning: int | None = None
    output: Any = None
    extra: dict[str, Any] | None = None
    first_chunk: float | None = None  # perf_counter() at a stream's first item

    def __init__(self) -> None:
        self.finish_reasons: list[str] = []


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
    # Aliases in the order the SDKs' bodies (alphabetical) have them: the later wins.
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "stop": "gen_ai.request.stop_sequences",
    "stop_sequences": "gen_ai.request.stop_sequences",
}


class LlmCall(Result):
    """An LLM call in progress: its span, its trace, how to end them, and (as the
    ``Result`` it is) what the response said: one object per call, not two.

    At call time it takes the clock, the input's snapshot and what the response said;
    the span's fields are written from them when the span is first read (``_lazy``)."""

    # The call's own state, its defaults the class's (as the Result's fields).
    done = False  # finish() ran
    ended = False  # its end is to be written into the span
    started_written = False  # the span's start is written
    trace_started = False  # the own trace's start time is written
    plain = False  # set by the hook: a complete response, no raw-response header
    held = False  # its stream holds its (current) trace until it ends (tracing/_holds.py)
    error: BaseException | None = None
    incomplete: str | None = None
    end_ns = 0
    started_at: datetime | None = None  # start_ns as a datetime, once made
    ended_at: datetime | None = None
    started = 0.0  # perf_counter() at a stream's start (time to first token)
    # Its trace and span until it ends (None after: the records point at the call, and
    # a call pointing back would make each queued trace a reference cycle).
    trace: Any
    span: Any
    input: Any  # the request's input: freeze()'s snapshot, or None
    params: dict[str, Any] | None = None  # the request body, when it names parameters
    # Set by open_call(), which makes every call.
    start_ns: int
    own_trace: bool
    tracer: AsyncTracing
    endpoint: Any
    provider: str
    request_model: str | None
    stream: bool
    capture: bool

    def finish(self, *, error: BaseException | None = None, incomplete: str | None = None) -> None:
        """End the call (and queue its own trace) once; later calls do nothing. What the
        response said is written into the span when the span is first read."""
        if self.done:
            return
        self.done = True
        self.end_ns = _time_ns()
        trace, span = self.trace, self.span
        self.trace = self.span = None  # no cycle: the records point at the call
        try:
            # A trace its stream holds is marked queued but waits for this end (_holds).
            if self.own_trace or self.held or not trace._queued:
                if error is not None:
                    self._failed(error, trace, span)
                if incomplete is not None:  # else the class's None: one store less
                    self.incomplete = incomplete
                self.ended = True  # last: a writer in another thread sees all of it
            # else: its trace was sent before the call ended (a stream read after the
            # trace ended): the span already has an end time there; nothing more goes in.
        except Exception:  # never into the host: the span still ends
            failed("record an LLM call")
            self.ended = True
        if self.own_trace:
            trace._ended = True
            self.tracer.enqueue(trace)
        elif self.held:
            self.tracer._release(trace)

    def _failed(self, error: BaseException, trace: Any, span: Any) -> None:
        """An error's status and text, now (what ``span.end(error=...)`` sets)."""
        self.error = error
        text = f"{type(error).__name__}: {error}"
        if span_ended(span):  # span.end() would do nothing
            return
        span.status = "error"
        span.error = text
        if self.own_trace:
            trace.status = "error"
            trace.error = text

    def start_time(self) -> datetime:
        """The start as a datetime, made once: the span's and its own trace's."""
        made = self.started_at
        if made is None:
            made = self.started_at = at_ns(self.start_ns)
        return made

    def end_time(self) -> datetime:
        """The end as a datetime, made once: the span's and its own trace's."""
        made = self.ended_at
        if made is None:
            made = self.ended_at = at_ns(self.end_ns)
        return made

    def write_start(self, span: Any) -> None:
        """Write the span's start: its metadata (the request's), start time and input."""
        meta = {  # one dict display: sized once, not grown key by key
            "gen_ai.operation.name": self.endpoint.operation,
            "gen_ai.provider.name": self.provider,
            "gen_ai.request.model": self.request_model,
            "stream": self.stream,
        }
        put_metadata(span, meta)  # first: a failure below leaves a metadata dict
        put_start(span, self.start_time())
        body = self.params
        if body is not None:
            _request_params(body, meta)
        snapshot = self.input
        put_input(span, None if snapshot is None else self.endpoint.input_of(snapshot))

    def write_end(self, span: Any) -> None:
        """Write what the response said (read into the call when it came) and the end."""
        try:
            self._record(span)
        except Exception:  # never into the reader: the span still ends
            failed("record an LLM call")
            if not span_ended(span):
                put_end(span, self.end_time())

    def _record(self, span: Any) -> None:
        meta = get_metadata(span)
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
        if self.incomplete is not None:
            meta["stream_incomplete"] = self.incomplete
        usage = _usage(self, self.request_model, self.provider)
        error = self.error
        if usage is None and error is None:
            meta["usage_missing"] = True
        if error is not None:
            meta["error.type"] = type(error).__name__
        output = output_snapshot(self.output) if self.capture else None
        if not span_ended(span):  # span.end(output=, llm_usage=): once
            put_end(span, self.end_time())
            if output is not None:
                put_output(span, output)
            if usage is not None:
                put_usage(span, usage)


_PARAM_KEYS = frozenset(_REQUEST_PARAMS)
_PARAM_RANK = {key: rank for rank, key in enumerate(_REQUEST_PARAMS)}


def open_call(
    tracer: AsyncTracing,
    endpoint: Any,
    provider: str,
    body: dict[str, Any],
    stream: bool,
    capture_content: bool,
) -> LlmCall:
    """The call for a request ``body`` (which may hold the SDKs' unset defaults:
    ``SENTINELS``; never recorded), its span started: one frame, the call made without
    ``type.__call__`` and ``__init__`` (this runs cold, once per call).

    The span's metadata is made when the span is written (``write_start``): the
    request parameters are read then from ``body``, kept when it names any (a C set
    check; the body is not walked). The SDKs make the body dict per call and never
    change it (they transform a copy of the options), and the parameters are scalars
    or the lists the metadata held by reference before, so what is recorded is the
    same."""
    call: LlmCall = _new_object(LlmCall)
    model = body.get("model")
    request_model = model if type(model) is str else None
    operation = endpoint.operation
    name = f"{operation} {request_model}" if request_model else operation
    if not _PARAM_KEYS.isdisjoint(body):
        call.params = body
    # The input as it is now (the caller may change its messages once the call is
    # made): orjson bytes, shaped when the span is written (_lazy).
    call.input = endpoint.snapshot(body) if capture_content else None
    call.start_ns = _time_ns()
    trace = _trace_var.get()
    if trace is None:  # a trace of its own, ended and queued with its one span
        open_own_trace(name, tracer, call)  # sets call.trace and call.span
        call.own_trace = True
    else:  # trace.span(name): the name is valid
        call.trace = trace
        call.span = open_child_span(trace, name, call)
        call.own_trace = False
    call.tracer = tracer
    call.endpoint = endpoint
    call.provider = provider
    call.request_model = request_model
    call.stream = stream
    call.capture = capture_content
    if stream:
        call.started = _perf()  # time to first token: streams only
    call.finish_reasons = []
    return call


def _request_params(body: dict[str, Any], meta: dict[str, Any]) -> None:
    """The request parameters the body holds, less those left unset (None, the SDKs'
    sentinels: Anthropic's body has them for all), in a fixed order (a set's is not):
    of two aliases the later wins."""
    keys = None
    for key in _PARAM_KEYS.intersection(body):
        value = body[key]
        if value is not None and type(value).__name__ not in SENTINELS:
            if keys is None:
                keys = [key]
            else:
                keys.append(key)
    if keys is None:
        return
    if len(keys) > 1:
        keys.sort(key=_PARAM_RANK.__getitem__)
    for key in keys:
        meta[_REQUEST_PARAMS[key]] = body[key]


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
