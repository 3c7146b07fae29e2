"""Anthropic ``POST /v1/messages``, complete and streamed.

Anthropic's ``input_tokens`` leaves out cached input, so prompt tokens are input +
cache read + cache creation (the GenAI convention: input includes cached tokens). In a
stream, ``message_start`` carries the first usage and every ``message_delta`` carries
cumulative figures that replace, never add to, what came before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from ._call import Result, unreadable_chunk
from ._call import perf as _perf
from ._content import freeze, input_snapshot, thaw
from ._shapes import SENTINELS, message_output, tool_call

__all__ = ["ENDPOINTS"]

_dumps = orjson.dumps


class _Usage:
    """The latest figure of each usage field (message_delta replaces what it names)."""

    __slots__ = ("cache_creation", "cache_read", "input", "output", "thinking")

    def __init__(self) -> None:
        self.input: int | None = None
        self.output: int | None = None
        self.cache_read: int | None = None
        self.cache_creation: int | None = None
        self.thinking: int | None = None

    def update(self, usage: Any) -> None:
        if usage is None:
            return
        value = getattr(usage, "input_tokens", None)
        if value is not None:
            self.input = value
        value = getattr(usage, "output_tokens", None)
        if value is not None:
            self.output = value
        value = getattr(usage, "cache_read_input_tokens", None)
        if value is not None:
            self.cache_read = value
        value = getattr(usage, "cache_creation_input_tokens", None)
        if value is not None:
            self.cache_creation = value
        value = _thinking(getattr(usage, "output_tokens_details", None))
        if value is not None:
            self.thinking = value

    def into(self, result: Result) -> None:
        if self.input is None and self.output is None:
            return
        prompt = (self.input or 0) + (self.cache_read or 0) + (self.cache_creation or 0)
        result.prompt_tokens = prompt
        result.completion_tokens = self.output or 0
        result.cache_read = self.cache_read
        result.cache_creation = self.cache_creation
        result.reasoning = self.thinking


def _thinking(details: Any) -> Any:
    if isinstance(details, dict):  # older SDK types keep undeclared fields as dicts
        return details.get("thinking_tokens")
    return getattr(details, "thinking_tokens", None)


def _with_system(raw: list[Any]) -> Any:
    """The input a span records: the system prompt as a first message, then the rest."""
    system, messages = raw
    if system is not None:
        messages = [{"role": "system", "content": system}, *(messages or ())]
    return input_snapshot(messages)


class Messages:
    """``POST /v1/messages`` (``create``, ``stream()``, ``parse``, the beta variants)."""

    operation = "chat"

    def snapshot(self, body: Mapping[str, Any]) -> Any:
        """``freeze([given(body, "system"), given(body, "messages")], _with_system)``,
        inlined (once per call, cold: three frames less)."""
        system = body.get("system")
        if type(system).__name__ in SENTINELS:
            system = None
        messages = body.get("messages")
        if type(messages).__name__ in SENTINELS:
            messages = None
        raw = [system, messages]
        try:
            return _dumps(raw)
        except Exception:
            return freeze(raw, _with_system)

    def input_of(self, frozen: Any) -> Any:
        return thaw(frozen, _with_system)

    def read(self, obj: Any, result: Result) -> None:
        """``_read``, for the usual response (text blocks, declared fields) through the
        objects' ``__dict__``: pydantic keeps declared fields there, and each attribute
        read of a model otherwise goes through its ``__getattr__`` hook, on code the
        SDK's work has just pushed out of the CPU caches. Any other shape (a field
        missing or undeclared, tool use) is read by ``_read``."""
        try:
            fields = obj.__dict__
            texts = []
            for block in fields["content"]:
                own = block.__dict__
                if own["type"] != "text":
                    raise LookupError
                texts.append(own["text"])
            usage = fields["usage"].__dict__
            details = usage["output_tokens_details"]
            thinking = None if details is None else _thinking(details)
            counts = (
                usage["input_tokens"],
                usage["output_tokens"],
                usage["cache_read_input_tokens"],
                usage["cache_creation_input_tokens"],
            )
            model, response_id, reason = fields["model"], fields["id"], fields["stop_reason"]
        except (AttributeError, LookupError, TypeError):
            self._read(obj, result)
            return
        result.model = model  # a fresh Result: what _read would set, at once
        result.response_id = response_id
        if reason:
            result.finish_reasons.append(reason)
        result.output = message_output("".join(texts) if texts else None, None)
        if counts[0] is not None or counts[1] is not None:
            prompt, output, cache_read, cache_creation = counts
            result.prompt_tokens = (prompt or 0) + (cache_read or 0) + (cache_creation or 0)
            result.completion_tokens = output or 0
            result.cache_read = cache_read
            result.cache_creation = cache_creation
            result.reasoning = thinking

    def _read(self, obj: Any, result: Result) -> None:
        result.model = getattr(obj, "model", None)
        result.response_id = getattr(obj, "id", None)
        reason = getattr(obj, "stop_reason", None)
        if reason:
            result.finish_reasons.append(reason)
        texts: list[str] = []
        calls = []
        for block in getattr(obj, "content", None) or ():
            kind = getattr(block, "type", None)
            if kind == "text":
                texts.append(block.text)
            elif kind in ("tool_use", "server_tool_use"):
                calls.append(
                    tool_call(
                        getattr(block, "id", None),
                        getattr(block, "name", None),
                        getattr(block, "input", None),
                    )
                )
        result.output = message_output("".join(texts) if texts else None, calls)
        usage = _Usage()
        usage.update(getattr(obj, "usage", None))
        usage.into(result)

    def stream(self, result: Result) -> MessagesStream:
        return MessagesStream(result)


_NOTHING_RECORDED = frozenset({"ping", "content_block_stop", "message_stop"})


class MessagesStream:
    """Raw message events: text and tool-input fragments per content block."""

    __slots__ = ("blocks", "result", "usage")

    def __init__(self, result: Result) -> None:
        self.result = result
        self.usage = _Usage()
        # index -> [kind, id, name, fragments]
        self.blocks: dict[int, list[Any]] = {}

    def add(self, event: Any) -> Any:
        result = self.result
        if result.first_chunk is None:
            result.first_chunk = _perf()
        try:
            # Declared fields from the models' __dict__: no __getattr__ hook per read. A
            # type the SDK does not declare (a newer event or delta) is an extra there.
            fields = event.__dict__
            kind = fields.get("type") or getattr(event, "type", None)
            if kind == "content_block_delta":
                delta = fields["delta"].__dict__
                block = self.blocks.get(fields["index"])
                delta_kind = delta.get("type")
                if block is None:
                    pass
                elif delta_kind == "text_delta":
                    block[3].append(delta["text"])
                elif delta_kind == "input_json_delta":
                    block[3].append(delta["partial_json"])
            elif kind in _NOTHING_RECORDED:  # ping, content_block_stop, message_stop
                pass
            elif kind == "content_block_start":
                content = event.content_block
                self.blocks[event.index] = [
                    content.type,
                    getattr(content, "id", None),
                    getattr(content, "name", None),
                    [],
                ]
            elif kind == "message_delta":
                reason = getattr(event.delta, "stop_reason", None)
                if reason:
                    result.finish_reasons = [reason]
                self.usage.update(getattr(event, "usage", None))
            elif kind == "message_start":
                message = event.message
                result.model = getattr(message, "model", None)
                result.response_id = getattr(message, "id", None)
                self.usage.update(getattr(message, "usage", None))
        except Exception:
            self.result = unreadable_chunk()
        return event

    def iterate(self, inner: Iterator[Any], watch: Any) -> Iterator[Any]:
        """``_streams._iterate`` with ``add()``'s usual case inlined (sync streams): a
        ``content_block_delta`` after the first event costs one Python frame, not two;
        every other event goes through ``add()``."""
        result = self.result
        add = self.add
        blocks = self.blocks
        try:
            for event in inner:
                try:
                    fields = event.__dict__
                    if fields.get("type") != "content_block_delta" or result.first_chunk is None:
                        add(event)
                        result = self.result  # a scratch Result after an unreadable event
                    else:
                        delta = fields["delta"].__dict__
                        block = blocks.get(fields["index"])
                        delta_kind = delta.get("type")
                        if block is None:
                            pass
                        elif delta_kind == "text_delta":
                            block[3].append(delta["text"])
                        elif delta_kind == "input_json_delta":
                            block[3].append(delta["partial_json"])
                except Exception:
                    result = self.result = unreadable_chunk()
                yield event
        except BaseException as exc:
            watch.stopped(exc)
            raise
        watch.end()

    def close(self) -> None:
        texts: list[str] = []
        calls = []
        for _, (kind, block_id, name, parts) in sorted(self.blocks.items()):
            if kind == "text":
                texts.append("".join(parts))
            elif kind in ("tool_use", "server_tool_use"):
                calls.append(tool_call(block_id, name, _json_or_text("".join(parts))))
        self.result.output = message_output("".join(texts) if texts else None, calls)
        self.usage.into(self.result)


def _json_or_text(text: str) -> Any:
    if not text:
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # a stream cut off inside the tool input


ENDPOINTS: dict[str, Any] = {"/v1/messages": Messages()}
