"""Every call shape, made through the real clients: ``call(kind, client, ...)`` returns
what the SDK returned; a stream is read to its end (``consume``)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

OPERATION = {
    "chat": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "messages": "chat",
}
SDK = {
    "chat": "openai",
    "responses": "openai",
    "completions": "openai",
    "embeddings": "openai",
    "messages": "anthropic",
}


def request(kind: str, client: Any, *, model: str, text: str, stream: bool) -> Any:
    """Start the call; a coroutine for an async client."""
    messages = [{"role": "user", "content": text}]
    if kind == "chat":
        extra = {"stream_options": {"include_usage": True}} if stream else {}
        return client.chat.completions.create(
            model=model, messages=messages, stream=stream, temperature=0.5, **extra
        )
    if kind == "responses":
        return client.responses.create(model=model, input=text, stream=stream)
    if kind == "completions":
        extra = {"stream_options": {"include_usage": True}} if stream else {}
        return client.completions.create(model=model, prompt=text, stream=stream, **extra)
    if kind == "embeddings":
        return client.embeddings.create(model=model, input=text)
    if kind == "messages":
        return client.messages.create(
            model=model, max_tokens=64, messages=messages, system="Be brief.", stream=stream
        )
    raise AssertionError(kind)


async def call(kind: str, client: Any, *, model: str, text: str, stream: bool) -> Any:
    """Make the call (a sync client in a worker thread) and read a stream to its end."""
    if inspect.iscoroutinefunction(client.request):

        async def run_async() -> Any:
            result = await request(kind, client, model=model, text=text, stream=stream)
            if stream:
                return [item async for item in result]
            return result

        return await run_async()

    def run() -> Any:
        result = request(kind, client, model=model, text=text, stream=stream)
        return list(result) if stream else result

    return await asyncio.to_thread(run)
