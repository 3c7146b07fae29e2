"""Span attributes to our fields: input, output, LLM usage, the root's trace fields, and
metadata for everything else.

The SDK's ``protocol="otlp"`` mapping is read back exactly (README "Sending to
OpenTelemetry backends (OTLP)", "The mapping"): ``input.value``
/ ``output.value`` with their ``*.mime_type``, ``gen_ai.*`` usage, ``tracing.*`` fields and
``metadata.<key>``. Spans from other OpenTelemetry SDKs keep their attributes in
``metadata`` under their own names; their usage attributes also fill ``llmUsage``. An
attribute whose value does not fit its field (a negative token count, tags that are not
strings) stays in ``metadata`` under its own name, so nothing sent is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson

__all__ = ["Fields", "split_attributes"]

_METADATA = "metadata."
JSON = "application/json"
# What fills llmUsage: ours first, then older and OpenInference names other SDKs send.
_MODEL = ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider")
_PROMPT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
_COMPLETION = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
_CALLS = ("tracing.llm.api_calls_count",)
_USAGE_KEYS = frozenset(_MODEL + _PROVIDER + _PROMPT + _COMPLETION + _CALLS)
_ROOT_TEXT = {
    "tracing.description": "description",
    "tracing.input_summary": "inputSummary",
    "tracing.output_summary": "outputSummary",
}
_IDS = ("tracing.trace.id", "tracing.span.id")


@attrs.define
class Fields:
    """What a span's attributes say, in wire-form names."""

    ours: bool  # sent by this SDK (it carries ``tracing.*`` attributes)
    stored_id: str | None  # ``tracing.trace.id`` on a root, ``tracing.span.id`` on a child
    input: Any = None
    output: Any = None
    llm_usage: dict[str, Any] | None = None
    trace: dict[str, Any] = attrs.Factory(dict)  # description, summaries, tags (root only)
    metadata: dict[str, Any] = attrs.Factory(dict)


def split_attributes(attributes: Mapping[str, Any], *, root: bool) -> Fields:
    """Sort ``attributes`` into fields; ``root`` for the span with no parent."""
    rest = dict(attributes)
    ours = _IDS[0] in rest or _IDS[1] in rest or any(k.startswith("tracing.") for k in rest)
    id_key = _IDS[0] if root else _IDS[1]
    stored_id = rest.get(id_key)
    if isinstance(stored_id, str) and stored_id:
        del rest[id_key]
    else:
        stored_id = None
    fields = Fields(ours=ours, stored_id=stored_id)
    fields.input = _value(rest, "input")
    fields.output = _value(rest, "output")
    fields.llm_usage = _usage(rest, consume=ours)
    if root:
        fields.trace = _root_fields(rest)
    fields.metadata = _metadata(rest)
    return fields


def _value(rest: dict[str, Any], prefix: str) -> Any:
    """``input.value`` parsed back as JSON when its mime type says so."""
    value = rest.pop(f"{prefix}.value", None)
    mime = rest.get(f"{prefix}.mime_type")
    if value is None:
        return None
    if mime is None or mime in (JSON, "text/plain"):
        rest.pop(f"{prefix}.mime_type", None)
    if mime == JSON and isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value  # not JSON after all: the text itself
    return value


def _first(rest: Mapping[str, Any], keys: tuple[str, ...], *, count: bool) -> tuple[str, Any]:
    """The first of ``keys`` holding a usable value: a string, or a count (int >= 0)."""
    for key in keys:
        value: Any = rest.get(key)
        if count:
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return key, value
        elif isinstance(value, str):
            return key, value
    return "", None


def _usage(rest: dict[str, Any], *, consume: bool) -> dict[str, Any] | None:
    if rest.keys().isdisjoint(_USAGE_KEYS):
        return None
    found = [
        _first(rest, _MODEL, count=False),
        _first(rest, _PROVIDER, count=False),
        _first(rest, _PROMPT, count=True),
        _first(rest, _COMPLETION, count=True),
        _first(rest, _CALLS, count=True),
    ]
    if not any(key for key, _ in found):
        return None
    (_, model), (_, provider), (_, prompt), (_, completion), (_, calls) = found
    if consume:  # ours: the usage is the field; another SDK's keys stay in metadata too
        for key, _ in found:
            rest.pop(key, None)
    return {
        "model": model,
        "provider": provider,
        "promptTokens": prompt or 0,
        "completionTokens": completion or 0,
        "apiCallsCount": 1 if calls is None else calls,
    }


def _root_fields(rest: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, field in _ROOT_TEXT.items():
        value = rest.get(key)
        if isinstance(value, str):
            out[field] = rest.pop(key)
    tags = rest.get("tracing.tags")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        out["tags"] = rest.pop("tracing.tags")
    return out


def _metadata(rest: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata.<key>`` as ``key``; any other attribute under its own name (an explicit
    ``metadata.<key>`` wins over a plain attribute of the same name)."""
    if not rest:
        return {}
    plain = {k: v for k, v in rest.items() if not k.startswith(_METADATA)}
    prefixed = {k[len(_METADATA) :]: v for k, v in rest.items() if k.startswith(_METADATA)}
    return {**plain, **prefixed}
