"""The public surface: exactly the names the README documents ("How it works",
"Options", "Delivery guarantees"), typed, with py.typed."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import tracing
from tracing import AsyncTracing, BatchError, DeliveryError, TracingError

PUBLIC = {
    "AsyncTracing",
    "Trace",
    "Span",
    "LlmUsage",
    "BatchResult",
    "ApiResponse",
    "Stats",
    "TracingError",
    "DeliveryError",
    "BatchError",
    "current_trace",
    "current_span",
    "__version__",
}


def test_all_is_exactly_the_contract() -> None:
    """``tracing.__all__`` lists exactly the names the README documents, sorted."""
    assert set(tracing.__all__) == PUBLIC
    assert list(tracing.__all__) == sorted(tracing.__all__)


def test_every_public_name_is_importable() -> None:
    """Each name in ``__all__`` is an attribute of the package."""
    for name in PUBLIC:
        assert hasattr(tracing, name), name


def test_exported_names_are_defined_in_private_modules() -> None:
    """Classes come from ``_``-prefixed modules, so internals stay private."""
    for name in PUBLIC - {"__version__"}:
        module = getattr(tracing, name).__module__
        assert module.startswith("tracing._"), (name, module)


def test_version_matches_distribution_metadata() -> None:
    """``__version__`` is the version of the installed ``aiotracing`` distribution."""
    from importlib.metadata import version

    assert tracing.__version__ == version("aiotracing")
    assert tracing.__version__ != "0.0.0+unknown"


def test_distribution_is_aiotracing_and_user_agent_keeps_its_name() -> None:
    """The distribution is ``aiotracing`` (PyPI's ``tracing`` is somebody else's); the
    User-Agent keeps the contract's ``tracing-python/<version>``."""
    from importlib.metadata import metadata

    from tracing._exporter import USER_AGENT

    assert metadata("aiotracing")["Name"] == "aiotracing"
    assert f"tracing-python/{tracing.__version__}" == USER_AGENT


def test_exception_tree() -> None:
    """DeliveryError and BatchError derive from TracingError, which is an Exception."""
    assert issubclass(TracingError, Exception)
    assert issubclass(DeliveryError, TracingError)
    assert issubclass(BatchError, TracingError)


def test_package_ships_py_typed() -> None:
    """``py.typed`` sits next to ``__init__.py``."""
    assert (Path(tracing.__file__).parent / "py.typed").is_file()


DEFAULTS = {
    "endpoint": None,
    "publishable_key": None,
    "flush_at": 20,
    "flush_interval": 5.0,
    "timeout": 15.0,
    "max_retries": 2,
    "max_batch_size": 100,
    "max_queue_size": 10_000,
    "max_concurrency": 4,
    "rate_limit": None,
    "retry_backoff": 0.5,
    "retry_backoff_max": 30.0,
    "compression": None,
    "session": None,
    "on_error": None,
    "enabled": True,
    "sample_rate": 1.0,
    "mask": None,
    "protocol": "tracing",
    "headers": None,
    "service_name": None,
    "spool_dir": None,
    "spool_max_bytes": 256 * 2**20,
    "spool_fsync": "interval",
}


def test_constructor_arguments_and_defaults() -> None:
    """Every AsyncTracing argument is keyword-only with the contract's default."""
    params = inspect.signature(AsyncTracing).parameters
    assert {n: p.default for n, p in params.items()} == DEFAULTS
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())


def test_a_tracer_built_without_arguments_runs_with_those_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The defaults are what the tracer runs with (its configuration), not only what the
    signature declares; None for endpoint, headers and service_name resolves to the
    documented fallbacks."""
    for name in ("TRACING_ENDPOINT", "TRACING_PUBLISHABLE_KEY", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    config = AsyncTracing()._config
    resolved = {
        "endpoint": "http://127.0.0.1:7070",
        "headers": (),  # None: no extra headers
        "service_name": "unknown_service",  # None: OTEL_SERVICE_NAME, else this
    }
    for name, default in DEFAULTS.items():
        assert getattr(config, name) == resolved.get(name, default), name


def test_trace_method_signatures() -> None:
    """trace(), end(), span() and shutdown() take the contract's keyword arguments."""
    trace_params = inspect.signature(AsyncTracing.trace).parameters
    assert list(trace_params) == [
        "self",
        "name",
        "id",
        "input",
        "description",
        "input_summary",
        "metadata",
        "tags",
    ]
    end_params = inspect.signature(tracing.Trace.end).parameters
    assert list(end_params)[1:] == ["output", "output_summary", "status", "error", "llm_usage"]
    span_params = inspect.signature(tracing.Trace.span).parameters
    assert list(span_params)[1:] == ["name", "input", "metadata"]
    span_end = inspect.signature(tracing.Span.end).parameters
    assert list(span_end)[1:] == ["output", "llm_usage", "error"]
    assert "timeout" in inspect.signature(AsyncTracing.shutdown).parameters


def test_public_coroutines_are_async() -> None:
    """start/flush/shutdown/send_batch*/Trace.end are coroutines; enqueue/stats are not."""
    for name in ("start", "flush", "shutdown", "send_batch", "send_batch_sequential"):
        assert inspect.iscoroutinefunction(getattr(AsyncTracing, name)), name
    assert inspect.iscoroutinefunction(tracing.Trace.end)
    assert not inspect.iscoroutinefunction(AsyncTracing.enqueue)
    assert not inspect.iscoroutinefunction(AsyncTracing.stats)
    assert not inspect.iscoroutinefunction(tracing.Span.end)


def test_value_classes_have_the_contract_fields_in_order() -> None:
    """LlmUsage, ApiResponse, BatchResult and Stats have the documented fields, in order."""
    import attrs

    def names(cls: type) -> list[str]:
        return [f.name for f in attrs.fields(cls)]

    assert names(tracing.LlmUsage) == [
        "model",
        "provider",
        "prompt_tokens",
        "completion_tokens",
        "api_calls_count",
    ]
    assert names(tracing.ApiResponse) == ["id", "success", "status", "message"]
    assert names(tracing.BatchResult) == ["total", "successful", "failed", "results", "errors"]
    assert names(tracing.Stats) == [
        "enqueued",
        "sent",
        "failed",
        "dropped",
        "retries",
        "batches",
        "queue_size",
        "in_flight",
        "spooled",
        "replayed",
    ]


def test_trace_and_span_carry_the_contract_fields() -> None:
    """Trace and Span expose every documented attribute."""
    common = {
        "id",
        "name",
        "start_time",
        "end_time",
        "duration",
        "status",
        "error",
        "input",
        "output",
        "metadata",
        "llm_usage",
    }
    trace = tracing.Trace("t")
    span = trace.span("s")
    for name in common | {"description", "input_summary", "output_summary", "tags", "spans"}:
        assert hasattr(trace, name), name
    for name in common | {"parent_id"}:
        assert hasattr(span, name), name


def test_errors_carry_their_attributes() -> None:
    """DeliveryError has requeued; BatchError has total, failed and errors."""
    delivery = DeliveryError("x", requeued=3)
    assert delivery.requeued == 3
    batch = BatchError("y", total=2, failed=2, errors=["a", "b"])
    assert (batch.total, batch.failed, batch.errors) == (2, 2, ["a", "b"])
