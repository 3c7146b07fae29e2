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

from ._call import LlmCall
from ._shapes import request_metadata
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

    def begin(self, options: Any, stream: bool) -> tuple[LlmCall, Any] | None:
        """The call and endpoint for this request, or None to leave it alone."""
        if _in_call.get() or not self.tracer._enabled:
            return None
        try:
            if str(options.method).lower() != "post":
                return None
            path = str(options.url).partition("?")[0]
            endpoint = self.endpoints.get(path)
            if endpoint is None:
                return None
            body = _given(options.json_data)
            model = body.get("model")
            call = LlmCall(
                self.tracer,
                operation=endpoint.operation,
                provider=self.provider,
                request_model=model if isinstance(model, str) else None,
                stream=bool(stream),
                capture_content=self.capture_content,
                input=endpoint.input(body) if self.capture_content else None,
            )
            call.span.metadata.update(request_metadata(body))
            return call, endpoint
        except Exception:
            failed("start an LLM span; the call is not traced")
            return None


_SENTINELS = frozenset({"Omit", "NotGiven"})


def _given(body: Any) -> dict[str, Any]:
    """The request body without the SDKs' ``Omit``/``NotGiven`` defaults (Anthropic's
    transform leaves them in ``json_data``)."""
    if not isinstance(body, Mapping):
        return {}
    return {key: value for key, value in body.items() if type(value).__name__ not in _SENTINELS}


def _raw_mode(options: Any) -> str | None:
    headers = getattr(options, "headers", None)
    if isinstance(headers, Mapping):
        mode = headers.get(_RAW_HEADER)
        return mode if isinstance(mode, str) else None
    return None


def _observe(call: LlmCall, endpoint: Any, value: Any, is_async: bool) -> None:
    """Record a returned value: a complete response now, a stream when it ends."""
    try:
        if call.stream:
            accumulator = endpoint.stream(call.result)
            watch_stream(value, call, accumulator, is_async)
            return
        endpoint.read(value, call.result)
    except Exception:
        failed("read an LLM response")
    call.finish()


def _unread(call: LlmCall) -> None:
    # with_streaming_response: the body is the caller's to read; reading it here
    # would change what the client does.
    call.result.extra = {"response_body_unread": True}
    call.finish()


def _sync_request(inst: Instrumentation, original: Callable[..., Any]) -> Callable[..., Any]:
    def request(cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        started = inst.begin(options, kwargs.get("stream", False))
        if started is None:
            return original(cast_to, options, *args, **kwargs)
        call, endpoint = started
        token = _in_call.set(True)
        try:
            value = original(cast_to, options, *args, **kwargs)
        except BaseException as exc:
            call.finish(error=exc)
            raise
        finally:
            _in_call.reset(token)
        mode = _raw_mode(options)
        if mode == "stream":
            _unread(call)
        elif mode is not None and callable(getattr(value, "parse", None)):
            try:
                parsed = value.parse()  # cached: the caller's parse() gets the same object
            except Exception as exc:
                call.finish(error=exc)
                return value
            _observe(call, endpoint, parsed, False)
        else:
            _observe(call, endpoint, value, False)
        return value

    request.__tracing_wrapped__ = original  # type: ignore[attr-defined]
    return request


def _async_request(inst: Instrumentation, original: Callable[..., Any]) -> Callable[..., Any]:
    async def request(cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        started = inst.begin(options, kwargs.get("stream", False))
        if started is None:
            return await original(cast_to, options, *args, **kwargs)
        call, endpoint = started
        token = _in_call.set(True)
        try:
            value = await original(cast_to, options, *args, **kwargs)
        except BaseException as exc:
            call.finish(error=exc)
            raise
        finally:
            _in_call.reset(token)
        mode = _raw_mode(options)
        if mode == "stream":
            _unread(call)
        elif mode is not None and callable(getattr(value, "parse", None)):
            try:
                parsed = value.parse()  # cached: the caller's parse() gets the same object
                if inspect.isawaitable(parsed):
                    parsed = await parsed
            except Exception as exc:
                call.finish(error=exc)
                return value
            _observe(call, endpoint, parsed, True)
        else:
            _observe(call, endpoint, value, True)
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
