"""The OpenAI routes of the fake server: chat completions, legacy completions,
embeddings and the Responses API, complete and streamed (shapes from recorded answers)."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

from _fake_base import Plan, Routes, data
from aiohttp import web

__all__ = ["OpenAIRoutes"]


# What Azure OpenAI streams before a chat answer's first chunk: no choices, and an empty
# id and model (recorded from a deployment's answer, its filter categories trimmed).
AZURE_FILTER_CHUNK: dict[str, Any] = {
    "choices": [],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
    "prompt_filter_results": [
        {
            "prompt_index": 0,
            "content_filter_results": {
                "hate": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": False, "severity": "safe"},
            },
        }
    ],
}


def choice_text(text: str, index: int) -> str:
    """Choice ``index``'s version of the reply's text (``choicesN``): told apart by a prefix."""
    return text if index == 0 else f"({index}) {text}"


class OpenAIRoutes(Routes):
    # OpenAI chat ----------------------------------------------------------------------

    def _chat_usage(self, plan: Plan) -> dict[str, Any]:
        cached = plan.prompt // 2 if plan.cached else 0
        reasoning = plan.completion // 2 if plan.cached else 0
        return {
            "prompt_tokens": plan.prompt,
            "completion_tokens": plan.completion,
            "total_tokens": plan.prompt + plan.completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        plan, error = await self._plan(request)
        if error is not None:
            return error
        if plan.stream:
            return await self._sse(request, self._chat_events(plan))
        usage = self._chat_usage(plan)
        message: dict[str, Any] = {"role": "assistant", "content": plan.reply, "refusal": None}
        if plan.tools:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": "call_4XzlGBLtUe9dy3GVNV4jhq7h",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"SF"}'},
                }
            ]
        self._record(plan, usage, plan.prompt, plan.completion)
        return web.json_response(
            {
                "id": f"chatcmpl-{plan.id}",
                "object": "chat.completion",
                "created": 1770853430,
                "model": plan.response_model,
                "choices": [
                    {
                        "index": index,
                        "message": message
                        if index == 0  # several choices only for text (Plan)
                        else {**message, "content": choice_text(plan.reply, index)},
                        "logprobs": None,
                        "finish_reason": "tool_calls" if plan.tools else "stop",
                    }
                    for index in range(plan.choices)
                ],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": "fp_a127cc0295",
            }
        )

    async def _chat_events(self, plan: Plan) -> AsyncIterator[bytes]:
        envelope = {
            "id": f"chatcmpl-{plan.id}",
            "object": "chat.completion.chunk",
            "created": 1727346173,
            "model": plan.response_model,
            "system_fingerprint": "fp_5050236cbd",
        }

        def choice(delta: dict[str, Any], finish: str | None, index: int) -> dict[str, Any]:
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

        def chunk(
            delta: dict[str, Any],
            finish: str | None = None,
            index: int = 0,
            usage: dict[str, Any] | None = None,
        ) -> bytes:
            extra = {"usage": usage} if usage is not None else {}
            return data({**envelope, "choices": [choice(delta, finish, index)], **extra})

        inline = "usageinline" in plan.model
        usage = self._chat_usage(plan)
        if plan.path.startswith("/openai/deployments/"):
            yield data(AZURE_FILTER_CHUNK)  # Azure OpenAI: its prompt filter's results first

        if plan.tools:
            yield chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_4XzlGBLtUe9dy3GVNV4jhq7h",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ],
                    "refusal": None,
                }
            )
            for part in ('{"', 'city":', '"SF"}'):
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
            finish = "tool_calls"
        elif plan.choices > 1:  # n > 1: one choice per chunk, each with its index
            for index in range(plan.choices):
                yield chunk({"role": "assistant", "content": "", "refusal": None}, None, index)
            for number, piece in enumerate(plan.pieces):
                texts = [
                    choice_text(piece, index) if number == 0 else piece
                    for index in range(plan.choices)
                ]
                if "together" in plan.model:  # every choice in each chunk
                    choices = [choice({"content": t}, None, i) for i, t in enumerate(texts)]
                    yield data({**envelope, "choices": choices})
                    continue
                for index, text in enumerate(texts):
                    yield chunk({"content": text}, None, index)
            for index in range(plan.choices - 1):
                yield chunk({}, "stop", index)
            finish = "length"  # the last choice's, so the finish reasons differ
        else:
            yield chunk({"role": "assistant", "content": "", "refusal": None})
            for number, piece in enumerate(plan.pieces):
                if "fail" in plan.model and number == 2:
                    yield data({"error": {"message": "fake failure", "type": "server_error"}})
                    return
                if "odd" in plan.model and number == 1:
                    yield data({**envelope, "choices": None})  # an OpenAI-compatible quirk
                last = inline and number == len(plan.pieces) - 1
                yield chunk({"content": piece}, usage=usage if last else None)
            finish = "stop"
        yield chunk({}, finish, plan.choices - 1)  # one choice with tools (Plan)
        if "nousage" in plan.model:
            self._record(plan, None, None, None)
        else:
            self._record(plan, usage, plan.prompt, plan.completion)
            if not inline:
                yield data({**envelope, "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"

    # OpenAI legacy completions and embeddings -------------------------------------------

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        plan, error = await self._plan(request)
        if error is not None:
            return error
        usage = {
            "prompt_tokens": plan.prompt,
            "completion_tokens": plan.completion,
            "total_tokens": plan.prompt + plan.completion,
        }
        envelope = {
            "id": f"cmpl-{plan.id}",
            "object": "text_completion",
            "created": 1727346173,
            "model": plan.response_model,
        }
        self._record(plan, usage, plan.prompt, plan.completion)
        if not plan.stream:
            choice = {"index": 0, "text": plan.reply, "logprobs": None, "finish_reason": "stop"}
            return web.json_response({**envelope, "choices": [choice], "usage": usage})

        async def events() -> AsyncIterator[bytes]:
            for piece in plan.pieces:
                choice = {"index": 0, "text": piece, "logprobs": None, "finish_reason": None}
                yield data({**envelope, "choices": [choice]})
            last = {"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}
            yield data({**envelope, "choices": [last]})
            yield data({**envelope, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        return await self._sse(request, events())

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        plan, error = await self._plan(request)
        if error is not None:
            return error
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vector = [0.25, -0.5, 0.125, 1.0]
        packed = base64.b64encode(struct.pack("<4f", *vector)).decode()
        encoded = body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": packed if encoded else vector}
            for i in range(len(inputs))
        ]
        usage = {"prompt_tokens": plan.prompt, "total_tokens": plan.prompt}
        self._record(plan, usage, plan.prompt, 0)
        return web.json_response(
            {"object": "list", "data": data, "model": plan.response_model, "usage": usage}
        )

    # OpenAI Responses -------------------------------------------------------------------

    def _response(self, plan: Plan, status: str) -> dict[str, Any]:
        cached = plan.prompt // 2 if plan.cached else 0
        reasoning = plan.completion // 2 if plan.cached else 0
        if plan.tools:
            item: dict[str, Any] = {
                "type": "function_call",
                "id": f"fc_{plan.id}",
                "call_id": "call_4XzlGBLtUe9dy3GVNV4jhq7h",
                "name": "get_weather",
                "arguments": '{"city":"SF"}',
                "status": "completed",
            }
        else:
            text = {"type": "output_text", "annotations": [], "logprobs": [], "text": plan.reply}
            item = {
                "id": f"msg_{plan.id}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [text],
            }
        done = status == "completed"
        return {
            "id": f"resp_{plan.id}",
            "object": "response",
            "created_at": 1759515113,
            "status": status,
            "model": plan.response_model,
            "output": [item] if done else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": plan.prompt,
                "input_tokens_details": {"cached_tokens": cached},
                "output_tokens": plan.completion,
                "output_tokens_details": {"reasoning_tokens": reasoning},
                "total_tokens": plan.prompt + plan.completion,
            }
            if done
            else None,
        }

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        plan, error = await self._plan(request)
        if error is not None:
            return error
        final = self._response(plan, "completed")
        if not plan.stream:
            self._record(plan, final["usage"], plan.prompt, plan.completion)
            return web.json_response(final)

        async def events() -> AsyncIterator[bytes]:
            number = 0

            def event(kind: str, **fields: Any) -> bytes:
                nonlocal number
                number += 1
                body = {"type": kind, "sequence_number": number, **fields}
                return f"event: {kind}\ndata: {json.dumps(body)}\n\n".encode()

            yield event("response.created", response=self._response(plan, "in_progress"))
            yield event("response.in_progress", response=self._response(plan, "in_progress"))
            item = final["output"][0]
            opened: dict[str, Any] = {**item, "status": "in_progress"}
            if plan.tools:
                opened["arguments"] = ""
            else:
                opened["content"] = []
            yield event("response.output_item.added", output_index=0, item=opened)
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            where = {"item_id": item["id"], "output_index": 0}
            if plan.tools:
                for piece in ('{"', 'city":', '"SF"}'):
                    yield event("response.function_call_arguments.delta", **where, delta=piece)
                done = {"arguments": item["arguments"]}
                yield event("response.function_call_arguments.done", **where, **done)
            else:
                yield event("response.content_part.added", **where, content_index=0, part=part)
            for number_, piece in enumerate(plan.pieces if not plan.tools else []):
                if "fail" in plan.model and number_ == 2:
                    yield event("error", code="server_error", message="fake failure", param=None)
                    return
                if "broken" in plan.model and number_ == 2:
                    failed = self._response(plan, "failed")
                    failed["error"] = {"code": "server_error", "message": "fake failure"}
                    yield event("response.failed", response=failed)
                    return
                yield event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=0,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            if not plan.tools:
                text = {"content_index": 0, "text": plan.reply, "logprobs": []}
                yield event("response.output_text.done", **where, **text)
                part = {**part, "text": plan.reply}
                yield event("response.content_part.done", **where, content_index=0, part=part)
            yield event("response.output_item.done", output_index=0, item=item)
            self._record(plan, final["usage"], plan.prompt, plan.completion)
            yield event("response.completed", response=final)

        return await self._sse(request, events())
