"""A local server that speaks the OpenAI and Anthropic HTTP APIs, for the demo, the tests
and the benchmarks: the real ``openai`` and ``anthropic`` packages talk to it through
``base_url``, over a real socket, with no network.

    with FakeLLM.threaded() as fake:          # its own thread and event loop
        client = OpenAI(base_url=fake.openai_url, api_key="test")
        client = Anthropic(base_url=fake.anthropic_url, api_key="test")

Bodies and SSE streams follow recorded API responses. The reply echoes the last user
text, and each answer's usage is a function of the request, so concurrent calls can be
told apart; every answer is kept in ``served`` (path, model, stream, the usage sent and
the prompt/completion figures an instrumentation must report); each request body is kept
in ``requests``. The requested model picks the behaviour (words in its name, combinable):

- ``tools``: a tool call (``get_weather``) instead of text;
- ``cached``: cached input and reasoning tokens (Anthropic: cache read and creation);
- ``nousage``: an OpenAI stream without the usage-only final chunk;
- ``fail``: a stream that fails after two chunks; a 400 for a complete response;
- ``flaky``: a 429 (with retry-after), then a 500, then the answer (the clients retry);
- ``chunksN``: N text chunks (default 4).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

__all__ = ["FakeLLM"]

_CHUNKS = re.compile(r"chunks(\d+)")
_RETRY = {"retry-after-ms": "20", "retry-after": "1"}


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    for message in reversed(messages or []):
        if not isinstance(message, dict) or message.get("role", "user") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        for part in content or []:
            if isinstance(part, dict) and part.get("type") in ("text", "input_text"):
                return str(part.get("text", ""))
    return ""


class _Plan:
    """What one request gets back, derived from its model name and body."""

    def __init__(self, path: str, body: dict[str, Any]) -> None:
        self.path = path
        self.model = str(body.get("model") or "unknown")
        self.stream = bool(body.get("stream"))
        source = body.get("messages", body.get("input", body.get("prompt")))
        self.text = _last_user_text(source)
        found = _CHUNKS.search(self.model)
        count = int(found.group(1)) if found else 4
        words = f"You said: {self.text}".split(" ")
        self.pieces = [words[i % len(words)] + " " for i in range(max(count, 1))]
        self.reply = "".join(self.pieces)
        self.tools = "tools" in self.model
        self.cached = "cached" in self.model
        self.prompt = 7 + len(json.dumps(source, sort_keys=True)) % 1000
        self.completion = len(self.pieces) if not self.tools else 16
        self.response_model = self.model + "-2025-01-01"
        self.id = f"{abs(hash((self.text, self.model))) % 10**12:012d}"


class FakeLLM:
    """The server; ``url`` is its base, ``served`` what it answered (in order)."""

    def __init__(self) -> None:
        self.served: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []  # every request body, retries included
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._attempts: dict[str, int] = {}

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeLLM:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @classmethod
    @contextmanager
    def threaded(cls) -> Iterator[FakeLLM]:
        """The server on an event loop of its own in a daemon thread (for sync code)."""
        fake = cls()
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(target=cls._serve, args=(fake, loop, ready), daemon=True)
        thread.start()
        if not ready.wait(30) or not fake.url:
            raise RuntimeError("the fake LLM server did not start")
        try:
            yield fake
        finally:
            asyncio.run_coroutine_threadsafe(fake.close(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)

    @staticmethod
    def _serve(fake: FakeLLM, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(fake.start())
        finally:
            ready.set()
        loop.run_forever()
        loop.close()

    # Shared behaviour ---------------------------------------------------------------

    async def _plan(self, request: web.Request) -> tuple[_Plan, web.Response | None]:
        body = await request.json()
        self.requests.append(body)
        plan = _Plan(request.path, body)
        if "flaky" in plan.model:
            retry = int(request.headers.get("x-stainless-retry-count", "0"))
            if retry == 0:
                return plan, self._error(request, 429, "rate_limit_error", _RETRY)
            if retry == 1:
                return plan, self._error(request, 500, "server_error", _RETRY)
        if "fail" in plan.model and not plan.stream:
            return plan, self._error(request, 400, "invalid_request_error", {})
        return plan, None

    def _error(
        self, request: web.Request, status: int, kind: str, headers: dict[str, str]
    ) -> web.Response:
        message = f"fake {kind} ({status})"
        if request.path == "/v1/messages":
            body: dict[str, Any] = {
                "type": "error",
                "error": {"type": kind, "message": message},
                "request_id": "req_fake",
            }
        else:
            body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return web.json_response(body, status=status, headers=headers)

    def _record(self, plan: _Plan, usage: Any, prompt: int | None, completion: int | None) -> None:
        self.served.append(
            {
                "path": plan.path,
                "model": plan.model,
                "response_model": plan.response_model,
                "stream": plan.stream,
                "text": plan.text,
                "reply": plan.reply,
                "usage": usage,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
            }
        )

    async def _sse(self, request: web.Request, events: AsyncIterator[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        async for event in events:
            await response.write(event)
        await response.write_eof()
        return response

    # OpenAI chat ----------------------------------------------------------------------

    def _chat_usage(self, plan: _Plan) -> dict[str, Any]:
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
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": "tool_calls" if plan.tools else "stop",
                    }
                ],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": "fp_a127cc0295",
            }
        )

    async def _chat_events(self, plan: _Plan) -> AsyncIterator[bytes]:
        envelope = {
            "id": f"chatcmpl-{plan.id}",
            "object": "chat.completion.chunk",
            "created": 1727346173,
            "model": plan.response_model,
            "system_fingerprint": "fp_5050236cbd",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return _data({**envelope, "choices": [choice]})

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
        else:
            yield chunk({"role": "assistant", "content": "", "refusal": None})
            for number, piece in enumerate(plan.pieces):
                if "fail" in plan.model and number == 2:
                    yield _data({"error": {"message": "fake failure", "type": "server_error"}})
                    return
                yield chunk({"content": piece})
            finish = "stop"
        yield chunk({}, finish)
        if "nousage" in plan.model:
            self._record(plan, None, None, None)
        else:
            usage = self._chat_usage(plan)
            self._record(plan, usage, plan.prompt, plan.completion)
            yield _data({**envelope, "choices": [], "usage": usage})
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
                yield _data({**envelope, "choices": [choice]})
            last = {"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}
            yield _data({**envelope, "choices": [last]})
            yield _data({**envelope, "choices": [], "usage": usage})
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

    def _response(self, plan: _Plan, status: str) -> dict[str, Any]:
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

    # Anthropic messages -----------------------------------------------------------------

    def _anthropic_usage(self, plan: _Plan) -> tuple[dict[str, Any], int]:
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
        self, plan: _Plan, message: dict[str, Any], usage: dict[str, Any], prompt: int
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


def _data(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"
