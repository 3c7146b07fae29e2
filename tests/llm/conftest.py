"""Fixtures for the LLM client tests: the fake OpenAI/Anthropic server from
``examples/_fake_llm.py`` (its own thread, so sync clients can call it from the test's
loop thread too), real clients pointed at it, and a tracer sending to a recorder."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.integrations.conftest import Recorder, recorder
from tracing import AsyncTracing

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from _fake_llm import FakeLLM

__all__ = ["FakeLLM", "Recorder", "recorder"]  # recorder: the fixture, one definition


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM.threaded() as server:
        yield server


@pytest.fixture
async def tracer(recorder: Recorder) -> AsyncIterator[AsyncTracing]:
    made = AsyncTracing(endpoint=recorder.url, flush_at=10_000, flush_interval=0)
    try:
        yield made
    finally:
        await made.shutdown(timeout=10)


_made: list[Any] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Every client a test made is closed after it (its connection pool with it)."""
    yield
    while _made:
        client = _made.pop()
        closing = client.close()
        if closing is not None:
            await closing


def openai_client(fake: FakeLLM, *, is_async: bool = False, **options: Any) -> Any:
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    client = cls(**{"base_url": fake.openai_url, "api_key": "sk-test", "max_retries": 2, **options})
    _made.append(client)
    return client


def anthropic_client(fake: FakeLLM, *, is_async: bool = False, **options: Any) -> Any:
    cls = anthropic.AsyncAnthropic if is_async else anthropic.Anthropic
    client = cls(
        **{"base_url": fake.anthropic_url, "api_key": "sk-test", "max_retries": 2, **options}
    )
    _made.append(client)
    return client
