"""The benchmarked FastAPI service, in one variant per tracing library.

``GET /items/{item_id}?currency=EUR`` awaits two small functions (a lookup and a price)
and returns JSON: the shape of a thin real endpoint. The variant comes from
``BENCH_VARIANT`` (``build()`` takes it as an argument, for the in-process driver):

- ``none``: no tracing.
- ``tracing``: this SDK, ``TracingMiddleware`` + ``lifespan`` + both functions under
  ``@tracer.observe()`` (arguments and return values captured), defaults except the
  endpoint (``TRACING_ENDPOINT``, the sink).
- ``tracing-middleware``: the same without ``observe()``: what the middleware alone costs.
- ``tracing-flush100``: ``tracing`` with ``flush_at=100`` (one HTTP request per 100
  traces instead of 20).
- ``otel``: OpenTelemetry, ``FastAPIInstrumentor`` + ``BatchSpanProcessor`` + the
  OTLP/HTTP exporter to ``{sink}/v1/traces``, both functions in a span of their own.
- ``sentry``: sentry-sdk with ``traces_sample_rate=1.0`` (its FastAPI integration turns on
  by itself), both functions under ``@sentry_sdk.trace``, a DSN on the sink.

``app.state.flush()`` waits until what the app recorded so far is delivered (the
in-process driver's use). Served by ``uvicorn --factory benchmarks.service.app:from_env``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

Step = Callable[..., Awaitable[Any]]


async def load_item(item_id: int) -> dict[str, Any]:
    await asyncio.sleep(0)  # where a real service would await its database
    return {"id": item_id, "name": f"item {item_id}", "tags": ["a", "b"]}


async def price(item: dict[str, Any], currency: str) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"amount": 9.99 + item["id"] % 7, "currency": currency}


def _routes(app: FastAPI, load: Step, quote: Step) -> FastAPI:
    @app.get("/items/{item_id}")
    async def get_item(item_id: int, currency: str = "EUR") -> dict[str, Any]:
        item = await load(item_id)
        return {"item": item, "price": await quote(item, currency)}

    return app


async def _nothing() -> None:
    return None


def _none() -> FastAPI:
    app = _routes(FastAPI(), load_item, price)
    app.state.flush = _nothing
    return app


def _tracing(sink: str, observed: bool = True, **options: Any) -> FastAPI:
    from tracing import AsyncTracing
    from tracing.integrations.fastapi import TracingMiddleware, lifespan

    # BENCH_TRACING_ARGS: extra AsyncTracing arguments as JSON, for experiments only.
    options.update(json.loads(os.environ.get("BENCH_TRACING_ARGS", "{}")))
    tracer = AsyncTracing(endpoint=sink, **options)
    app = FastAPI(lifespan=lifespan(tracer))
    app.add_middleware(TracingMiddleware, tracer=tracer)
    app.state.flush = tracer.flush
    if not observed:
        return _routes(app, load_item, price)
    return _routes(app, tracer.observe()(load_item), tracer.observe()(price))


def _otel(sink: str) -> FastAPI:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(f"{sink}/v1/traces")))
    tracer = trace.get_tracer("bench", tracer_provider=provider)

    def spanned(func: Step) -> Step:
        async def wrapper(*args: Any) -> Any:
            with tracer.start_as_current_span(func.__name__):
                return await func(*args)

        return wrapper

    app = _routes(FastAPI(), spanned(load_item), spanned(price))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    app.state.flush = lambda: asyncio.to_thread(provider.force_flush)
    return app


def _sentry(sink: str) -> FastAPI:
    import sentry_sdk

    host = sink.removeprefix("http://")
    sentry_sdk.init(dsn=f"http://public@{host}/1", traces_sample_rate=1.0)
    app = _routes(FastAPI(), sentry_sdk.trace(load_item), sentry_sdk.trace(price))
    app.state.flush = lambda: asyncio.to_thread(sentry_sdk.flush)
    return app


VARIANTS = ("none", "tracing", "tracing-middleware", "tracing-flush100", "otel", "sentry")


def build(variant: str, sink: str) -> FastAPI:
    """The app for ``variant``, sending to ``sink`` (``http://127.0.0.1:PORT``)."""
    if variant == "none":
        return _none()
    if variant == "tracing":
        return _tracing(sink)
    if variant == "tracing-middleware":
        return _tracing(sink, observed=False)
    if variant == "tracing-flush100":
        return _tracing(sink, flush_at=100)
    if variant == "otel":
        return _otel(sink)
    if variant == "sentry":
        return _sentry(sink)
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def from_env() -> FastAPI:
    """``uvicorn --factory benchmarks.service.app:from_env``: ``BENCH_VARIANT``, ``BENCH_SINK``."""
    return build(os.environ.get("BENCH_VARIANT", "none"), os.environ.get("BENCH_SINK", ""))
