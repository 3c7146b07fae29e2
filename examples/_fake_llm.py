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
- ``usageinline``: an OpenAI chat stream whose usage rides on its last text chunk (as some
  OpenAI-compatible servers send it), with no usage-only chunk;
- ``fail``: a stream that fails after two chunks (a Responses stream: an ``error``
  event); a 400 for a complete response;
- ``broken``: a Responses stream that ends in ``response.failed`` after two deltas;
- ``odd``: an OpenAI chat stream with a chunk whose ``choices`` is null, an Anthropic
  stream with a ``content_block_delta`` whose ``delta`` is null;
- ``flaky``: a 429 (with retry-after), then a 500, then the answer (the clients retry);
- ``chunksN``: N text chunks (default 4);
- ``choicesN``: N choices (OpenAI chat, ``n > 1``), choice i's text prefixed ``(i)``; a stream
  sends one choice per chunk, and the last choice finishes with ``length``;
- ``together`` (with ``choicesN``): a stream's text chunks carry every choice at once.

An Azure OpenAI deployment's chat stream (``/openai/deployments/<model>/...``, any model)
starts, as Azure's does, with a chunk of prompt filter results: no choices, an empty id
and model.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from _fake_anthropic import AnthropicRoutes
from _fake_openai import OpenAIRoutes
from aiohttp import web

__all__ = ["FakeLLM"]


class FakeLLM(OpenAIRoutes, AnthropicRoutes):
    """The server; ``url`` is its base, ``served`` what it answered (in order)."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self._runner: web.AppRunner | None = None

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
