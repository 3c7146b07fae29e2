"""OpenAI endpoints: chat completions, Responses, legacy completions, embeddings.

Each endpoint knows the request's input, reads a complete response into a ``Result``,
and makes an accumulator for its stream. Usage follows the GenAI conventions: OpenAI's
``prompt_tokens`` / ``input_tokens`` already include cached input, and
``completion_tokens`` / ``output_tokens`` include reasoning; the details go to metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ._call import Result
from ._content import freeze_field, input_snapshot, snapshot, thaw
from ._openai_chunks import ChatStream, CompletionsStream, read_usage
from ._shapes import SENTINELS, message_output, tool_call

__all__ = ["ENDPOINTS"]

_dumps = orjson.dumps


def _message_tool_calls(message: Any) -> list[dict[str, Any]] | None:
    calls = getattr(message, "tool_calls", None)
    if not calls:
        return None
    out = []
    for call in calls:
        function = getattr(call, "function", None)
        out.append(
            tool_call(
                getattr(call, "id", None),
                getattr(function, "name", None),
                getattr(function, "arguments", None),
            )
        )
    return out


class _Choices:
    """A complete response made of ``choices`` (chat and legacy completions)."""

    def read(self, obj: Any, result: Result) -> None:
        result.model = getattr(obj, "model", None)
        result.response_id = getattr(obj, "id", None)
        outputs = []
        for choice in getattr(obj, "choices", None) or ():
            reason = getattr(choice, "finish_reason", None)
            if reason:
                result.finish_reasons.append(reason)
            outputs.append(self.output(choice))
        result.output = outputs[0] if len(outputs) == 1 else (outputs or None)
        read_usage(getattr(obj, "usage", None), result)

    def output(self, choice: Any) -> Any:  # pragma: no cover - every subclass has one
        raise NotImplementedError


class Chat(_Choices):
    """``POST /chat/completions``."""

    operation = "chat"

    def read(self, obj: Any, result: Result) -> None:
        """``_Choices.read``, for the usual response (text choices, declared fields)
        through the objects' ``__dict__``: pydantic keeps declared fields there, and each
        attribute read of a model otherwise goes through its ``__getattr__`` hook, on
        code the SDK's work has just pushed out of the CPU caches. Any other shape (a
        field missing or undeclared, tool calls, ``n`` other than 1) is read by
        ``_Choices.read``; nothing is written into ``result`` before all is read."""
        try:
            fields = obj.__dict__
            usage = fields["usage"]
            [choice] = fields["choices"]  # one choice: no list of outputs to build
            own = choice.__dict__
            message = own["message"].__dict__
            if message["tool_calls"]:
                raise LookupError
            reason = own["finish_reason"]
            content = message["content"]
            prompt = completion = cached = reasoning = None
            if usage is not None:
                counts = usage.__dict__
                prompt, completion = counts["prompt_tokens"], counts["completion_tokens"]
                details = counts["prompt_tokens_details"]
                if details is not None:
                    cached = details.__dict__["cached_tokens"]
                details = counts["completion_tokens_details"]
                if details is not None:
                    reasoning = details.__dict__["reasoning_tokens"]
            model, response_id = fields["model"], fields["id"]
        except (AttributeError, LookupError, TypeError, ValueError):
            _Choices.read(self, obj, result)
            return
        result.model = model  # a fresh Result: what _Choices.read would set, at once
        result.response_id = response_id
        if reason:
            result.finish_reasons.append(reason)
        result.output = {"role": "assistant", "content": content}
        result.prompt_tokens = prompt
        result.completion_tokens = completion
        result.cache_read = cached
        result.reasoning = reasoning

    def snapshot(self, body: Mapping[str, Any]) -> Any:
        """``freeze_field(body, "messages", input_snapshot)``, inlined (once per call, cold)."""
        raw = body.get("messages")
        if raw is None or type(raw).__name__ in SENTINELS:
            return None
        try:
            return _dumps(raw)
        except Exception:
            return freeze_field(body, "messages", input_snapshot)

    def input_of(self, frozen: Any) -> Any:
        return thaw(frozen, input_snapshot)

    def output(self, choice: Any) -> Any:
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        if getattr(message, "tool_calls", None):
            return message_output(content, _message_tool_calls(message))
        return {"role": "assistant", "content": content}

    def stream(self, result: Result) -> ChatStream:
        return ChatStream(result)


class Completions(_Choices):
    """``POST /completions`` (legacy text completions)."""

    operation = "text_completion"

    def snapshot(self, body: Mapping[str, Any]) -> Any:
        return freeze_field(body, "prompt", snapshot)

    def input_of(self, frozen: Any) -> Any:
        return thaw(frozen, snapshot)

    def output(self, choice: Any) -> Any:
        return getattr(choice, "text", None)

    def stream(self, result: Result) -> CompletionsStream:
        return CompletionsStream(result)


class Embeddings:
    """``POST /embeddings``: usage and counts; the vectors are never recorded."""

    operation = "embeddings"

    def snapshot(self, body: Mapping[str, Any]) -> Any:
        return freeze_field(body, "input", snapshot)

    def input_of(self, frozen: Any) -> Any:
        return thaw(frozen, snapshot)

    def read(self, obj: Any, result: Result) -> None:
        result.model = getattr(obj, "model", None)
        data = getattr(obj, "data", None) or ()
        result.extra = {"gen_ai.embeddings.count": len(data)}
        if data:
            vector = getattr(data[0], "embedding", None)
            if isinstance(vector, list):
                result.extra["gen_ai.embeddings.dimension.count"] = len(vector)
        usage = getattr(obj, "usage", None)
        if usage is not None:
            result.prompt_tokens = getattr(usage, "prompt_tokens", None)
            result.completion_tokens = 0

    def stream(self, result: Result) -> Any:  # embeddings never stream
        return None


# Without /responses: _openai_responses adds it (ENDPOINTS there is every endpoint).
ENDPOINTS: dict[str, Any] = {
    "/chat/completions": Chat(),
    "/completions": Completions(),
    "/embeddings": Embeddings(),
}
