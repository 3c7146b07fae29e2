"""The one choke point per client: the instance's ``request()``.

Every SDK call (``create``, ``parse``, ``stream()``, ``with_raw_response``, Anthropic's
``messages.stream()``) goes through ``client.request(cast_to, options, *, stream,
stream_cls)``, which holds the SDK's retry loop: one call of it is one logical API call.
``instrument()`` puts a wrapper in the instance's ``__dict__`` (the class is never
touched) and wraps ``copy``/``with_options`` so that derived clients are instrumented
too. A context variable marks a call in progress, so an instrumented client called from
inside another instrumented call (a wrapper library, a second instrumentation) records
nothing more: one span per logical call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._call import LlmCall, open_call
from ._shapes import SENTINELS
from ._soft import failed
from ._streams import watch_stream

if TYPE_CHECKING:
    from .._client import AsyncTracing

__all__ = ["STATE", "Instrumentation", "install", "remove"]

STATE = "_tracing_instrumentation"
_PATCHED = ("request", "copy", "with_options")
_RAW_HEADER = "X-Stainless-Raw-Response"
_in_call: ContextVar[bool] = ContextVar("tracing_llm_call", default=False)


class Instrumentation:
    """What ``instrument()`` did to one client, and what it needs per call."""

    __slots__ = ("capture_content", "endpoints", "provider", "saved", "tracer")

    def __init__(
        self,
        tracer: AsyncTracing,
        capture_content: bool,
        provider: str,
        endpoints: Mapping[str, Any],
        saved: dict[str, Any],
    ) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        self.provider = provider
        self.endpoints = endpoints
        self.saved = saved

    def __repr__(self) -> str:
        return f"<tracing instrumentation provider={self.provider!r} tracer={self.tracer!r}>"

    def begin(self, options: Any, stream: bool) -> LlmCall | None:
        """The call for this request, or None to leave it alone."""
        if _in_call.get() or not self.tracer._enabled:
            return None
        try:
            try:  # the declared fields, from the model's __dict__ (no __getattr__ hook)
                fields = options.__dict__
                method, path, headers = fields["method"], fields["url"], fields["headers"]
                body = fields["json_data"]
            except (AttributeError, LookupError, TypeError):
                method, path = options.method, options.url
                headers = getattr(options, "headers", None)
                body = options.json_data
            if method != "post" and str(method).lower() != "post":
                return None
            if type(path) is not str or "?" in path:
                path = str(path).partition("?")[0]
            endpoint = self.endpoints.get(path)
            if endpoint is None:
                return None
            if type(body) is not dict:  # the SDKs' unset defaults are left in (SENTINELS)
                body = dict(body) if isinstance(body, Mapping) else {}
            stream = bool(stream)
            call = open_call(
                self.tracer, endpoint, self.provider, body, stream, self.capture_content
            )
            # The usual call (a complete response, no raw-response header): the wrapper
            # reads it itself (in ``request``), without the raw-response and stream checks.
            if not stream:  # _raw_mode(headers), its two usual cases inlined
                kind = type(headers)
                if kind is dict:
                    call.plain = headers.get(_RAW_HEADER) is None
                else:
                    call.plain = kind.__name__ in SENTINELS or _raw_mode(headers) is None
            return call
        except Exception:
            failed("start an LLM span; the call is not traced")
            return None


def _observe(call: LlmCall, value: Any, is_async: bool) -> None:
    """Record a returned value: a complete response now, a stream when it ends."""
    endpoint = call.endpoint
    try:
        if call.stream:
            watch_stream(value, call, endpoint.stream(call), is_async)
            if not call.own_trace and not call.trace._queued:
                call.held = True  # the trace waits for the stream (tracing/_holds.py)
                call.tracer._holds.hold(call.trace)
            return
        endpoint.read(value, call)
    except Exception:
        failed("read an LLM response")
    call.finish()


def _raw_mode(headers: Any) -> Any:
    """The request's raw-response header: "true" (``with_raw_response``), "stream"
    (``with_streaming_response``), or None (the usual call)."""
    if type(headers) is dict:
        return headers.get(_RAW_HEADER)
    if (
        headers is None  # the usual call: NotGiven, no ABC check (a cold one costs us)
        or type(headers).__name__ in SENTINELS
        or not isinstance(headers, Mapping)
    ):
        return None
    return headers.get(_RAW_HEADER)


def _returned(call: LlmCall, options: Any, value: Any, is_async: bool) -> Any:
    """Record what ``request()`` returned (any call but a ``plain`` one); for an async
    client's raw response, the awaitable its ``parse()`` gave (the caller awaits it and
    calls ``_parsed``)."""
    mode = _raw_mode(getattr(options, "headers", None))
    if type(mode) is str:
        return _raw_returned(call, mode, value, is_async)
    _observe(call, value, is_async)  # a stream, or a response read at once
    return None


def _raw_returned(call: LlmCall, mode: str, value: Any, is_async: bool) -> Any:
    """``_returned`` for ``with_raw_response`` / ``with_streaming_response`` calls."""
    if mode == "stream":
        # with_streaming_response: the body is the caller's to read; reading it here
        # would change what the client does.
        call.extra = {"response_body_unread": True}
        call.finish()
    elif not callable(getattr(value, "parse", None)):
        _observe(call, value, is_async)
    else:
        try:
            parsed = value.parse()  # cached: the caller's parse() gets the same object
        except Exception as exc:
            call.finish(error=exc)
            return None
        if is_async and inspect.isawaitable(parsed):
            return parsed
        _observe(call, parsed, is_async)
    return None


async def _parsed(call: LlmCall, pending: Any) -> None:
    try:
        parsed = await pending
    except Exception as exc:
        call.finish(error=exc)
        return
    _observe(call, parsed, True)


def _sync_request(inst: Instrumentation, original: Callable[..., Any]) -> Callable[..., Any]:
    def request(cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        call = inst.begin(options, kwargs.get("stream", False))
        if call is None:
            return original(cast_to, options, *args, **kwargs)
        token = _in_call.set(True)
        try:
            value = original(cast_to, options, *args, **kwargs)
        except BaseException as exc:
            call.finish(error=exc)
            raise
        finally:
            _in_call.reset(token)
        if call.plain:  # _plain(), inlined: one frame less on the usual call
            try:
                call.endpoint.read(value, call)
            except Exception:
                failed("read an LLM response")
            call.finish()
        else:
            _returned(call, options, value, False)
        return value

    request.__tracing_wrapped__ = original  # type: ignore[attr-defined]
    return request


def _async_request(inst: Instrumentation, original: Callable[..., Any]) -> Callable[..., Any]:
    async def request(cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        call = inst.begin(options, kwargs.get("stream", False))
        if call is None:
            return await original(cast_to, options, *args, **kwargs)
        token = _in_call.set(True)
        try:
            value = await original(cast_to, options, *args, **kwargs)
        except BaseException as exc:
            call.finish(error=exc)
            raise
        finally:
            _in_call.reset(token)
        if call.plain:  # _plain(), inlined: one frame less on the usual call
            try:
                call.endpoint.read(value, call)
            except Exception:
                failed("read an LLM response")
            call.finish()
            return value
        pending = _returned(call, options, value, True)
        if pending is not None:
            await _parsed(call, pending)
        return value

    request.__tracing_wrapped__ = original  # type: ignore[attr-defined]
    return request


def install(
    client: Any,
    tracer: AsyncTracing,
    capture_content: bool,
    provider: str,
    endpoints: Mapping[str, Any],
) -> None:
    """Instrument ``client`` in place; on one already instrumented, update its settings."""
    inst: Instrumentation | None = client.__dict__.get(STATE)
    if inst is not None:
        inst.tracer = tracer
        inst.capture_content = capture_content
        return
    own = client.__dict__
    saved = {name: own[name] for name in _PATCHED if name in own}
    inst = Instrumentation(tracer, capture_content, provider, endpoints, saved)
    original = client.request
    # The class says sync or async: ``original`` may be someone else's plain wrapper.
    is_async = inspect.iscoroutinefunction(type(client).request)
    wrapper = _async_request if is_async else _sync_request
    original_copy = client.copy

    def copy(*args: Any, **kwargs: Any) -> Any:
        derived = original_copy(*args, **kwargs)
        current: Instrumentation | None = own.get(STATE)
        if current is not None:
            from . import instrument

            instrument(current.tracer, derived, capture_content=current.capture_content)
        return derived

    own[STATE] = inst
    own["request"] = wrapper(inst, original)
    own["copy"] = copy
    own["with_options"] = copy


def remove(client: Any) -> bool:
    """Undo ``install()``; False when ``client`` was not instrumented."""
    own = getattr(client, "__dict__", None)
    if own is None or STATE not in own:
        return False
    inst: Instrumentation = own.pop(STATE)
    for name in _PATCHED:
        own.pop(name, None)
    own.update(inst.saved)
    return True
