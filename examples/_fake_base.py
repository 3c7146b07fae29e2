"""What the fake OpenAI/Anthropic server (``_fake_llm.FakeLLM``) shares between its
routes: the plan of one answer, error bodies, SSE writing, and the record of what it said."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

__all__ = ["Plan", "Routes", "data"]

_CHUNKS = re.compile(r"chunks(\d+)")
_CHOICES = re.compile(r"choices(\d+)")
RETRY = {"retry-after-ms": "20", "retry-after": "1"}


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


class Plan:
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
        found = _CHOICES.search(self.model)
        self.choices = int(found.group(1)) if found and not self.tools else 1
        self.cached = "cached" in self.model
        self.prompt = 7 + len(json.dumps(source, sort_keys=True)) % 1000
        self.completion = len(self.pieces) if not self.tools else 16
        self.response_model = self.model + "-2025-01-01"
        self.id = f"{abs(hash((self.text, self.model))) % 10**12:012d}"


class Routes:
    """The state and helpers every route uses."""

    def __init__(self) -> None:
        self.served: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []  # every request body, retries included

    async def _plan(self, request: web.Request) -> tuple[Plan, web.Response | None]:
        body = await request.json()
        self.requests.append(body)
        plan = Plan(request.path, body)
        if "flaky" in plan.model:
            retry = int(request.headers.get("x-stainless-retry-count", "0"))
            if retry == 0:
                return plan, self._error(request, 429, "rate_limit_error", RETRY)
            if retry == 1:
                return plan, self._error(request, 500, "server_error", RETRY)
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

    def _record(self, plan: Plan, usage: Any, prompt: int | None, completion: int | None) -> None:
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


def data(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"
