"""The Anthropic route of the fake server: ``POST /v1/messages``, complete and streamed
(event lines, ping, cumulative ``message_delta`` usage, tool input fragments)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from _fake_base import Plan, Routes
from aiohttp import web

__all__ = ["AnthropicRoutes"]


class AnthropicRoutes(Routes):
    # Anthropic messages -----------------------------------------------------------------

    def _anthropic_usage(self, plan: Plan) -> tuple[dict[str, Any], int]:
        read = plan.prompt // 2 if plan.cached else 0
        created = plan.prompt // 4 if plan.cached else 0
        usage = {
            "input_tokens": plan.prompt,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": created,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": plan.completion,
            "service_tier": "standard",
        }
        return usage, plan.prompt + read + created

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        plan, error = await self._plan(request)
        if error is not None:
            return error
        usage, prompt = self._anthropic_usage(plan)
        if plan.tools:
            content: list[dict[str, Any]] = [
                {
                    "type": "tool_use",
                    "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                }
            ]
        else:
            content = [{"type": "text", "text": plan.reply}]
        message = {
            "model": plan.response_model,
            "id": f"msg_{plan.id}",
            "type": "message",
            "role": "assistant",
            "content": content,
            "stop_reason": "tool_use" if plan.tools else "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not plan.stream:
            self._record(plan, usage, prompt, plan.completion)
            return web.json_response(message)
        return await self._sse(request, self._message_events(plan, message, usage, prompt))

    async def _message_events(
        self, plan: Plan, message: dict[str, Any], usage: dict[str, Any], prompt: int
    ) -> AsyncIterator[bytes]:
        def event(kind: str, **fields: Any) -> bytes:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()

        start_usage = {**usage, "output_tokens": 1}
        yield event(
            "message_start",
            message={**message, "content": [], "stop_reason": None, "usage": start_usage},
        )
        if plan.tools:
            block = {**message["content"][0], "input": {}}
            yield event("content_block_start", index=0, content_block=block)
            for part in ('{"locati', 'on": "Par', 'is"}'):
                delta = {"type": "input_json_delta", "partial_json": part}
                yield event("content_block_delta", index=0, delta=delta)
        else:
            yield event("content_block_start", index=0, content_block={"type": "text", "text": ""})
            yield event("ping")
            for number, piece in enumerate(plan.pieces):
                if "fail" in plan.model and number == 2:
                    error = {"type": "overloaded_error", "message": "Overloaded"}
                    yield event("error", error=error)
                    return
                if "odd" in plan.model and number == 1:
                    yield event("content_block_delta", index=0, delta=None)  # unreadable
                delta = {"type": "text_delta", "text": piece}
                yield event("content_block_delta", index=0, delta=delta)
        yield event("content_block_stop", index=0)
        # Cumulative: replaces message_start's figures (output_tokens 1 there).
        final_usage = {
            key: usage[key]
            for key in (
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
                "output_tokens",
            )
        }
        stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
        yield event("message_delta", delta=stop, usage=final_usage)
        self._record(plan, usage, prompt, plan.completion)
        yield event("message_stop")
