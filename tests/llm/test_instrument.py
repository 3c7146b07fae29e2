"""instrument()/uninstrument(): what they accept, what they change on the object, derived
clients, one span per logical call, content capture options."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from typing import Any

import anthropic
import openai
import pytest

from tests.integrations.conftest import Recorder, child_env
from tests.llm._calls import call
from tests.llm.conftest import FakeLLM, anthropic_client, openai_client
from tracing import AsyncTracing
from tracing._capture import MAX_CAPTURE_BYTES
from tracing._llm import provider_of


@pytest.mark.parametrize("value", [object(), openai, openai.OpenAI, "client", None], ids=repr)
def test_other_objects_are_a_type_error(value: Any) -> None:
    """Anything but an OpenAI/Anthropic client instance raises TypeError."""
    tracer = AsyncTracing(enabled=False)
    with pytest.raises(TypeError, match=r"instrument\(\) takes an openai\.OpenAI"):
        tracer.instrument(value)


def test_capture_content_must_be_bool() -> None:
    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="capture_content"):
        AsyncTracing(enabled=False).instrument(client, capture_content="no")  # type: ignore[arg-type]
    client.close()


async def test_same_object_twice_is_one_span(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """instrument() returns the object itself; a second call does not wrap it again."""
    client = openai_client(fake, is_async=True)
    assert tracer.instrument(client) is client
    assert tracer.instrument(client) is client
    wrapped = client.request
    assert wrapped.__tracing_wrapped__.__func__ is openai.AsyncOpenAI.request
    async with tracer.trace("request") as trace:
        await call("chat", client, model="gpt-4o", text="x", stream=False)
    assert len(trace.spans) == 1


async def test_uninstrument_restores_the_object(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """After uninstrument() the instance dict holds what it held before; no more spans."""
    client = anthropic_client(fake)
    before = dict(vars(client))
    tracer.instrument(client)
    assert "request" in vars(client)
    assert tracer.uninstrument(client) is client
    assert vars(client).keys() == before.keys()
    assert tracer.uninstrument(client) is client  # never instrumented now: unchanged
    async with tracer.trace("request") as trace:
        await call("messages", client, model="claude", text="x", stream=False)
    assert trace.spans == []


async def test_someone_elses_instance_patch_is_kept(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """A request() already set on the instance is called through, and restored after."""
    client = openai_client(fake)
    seen: list[str] = []
    original = client.request

    def theirs(cast_to: Any, options: Any, **kwargs: Any) -> Any:
        seen.append(options.url)
        return original(cast_to, options, **kwargs)

    client.request = theirs
    tracer.instrument(client)
    async with tracer.trace("request") as trace:
        await call("chat", client, model="gpt-4o", text="x", stream=False)
    assert seen == ["/chat/completions"]
    assert len(trace.spans) == 1
    tracer.uninstrument(client)
    assert client.request is theirs


async def test_derived_clients_are_instrumented(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """with_options() and copy() (and their copies) record spans too, one per call."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    derived = client.with_options(timeout=30).copy(max_retries=1).with_options()
    assert derived is not client
    async with tracer.trace("request") as trace:
        await call("chat", derived, model="gpt-derived", text="x", stream=False)
        await call("chat", client, model="gpt-parent", text="x", stream=False)
    assert [span.name for span in trace.spans] == ["chat gpt-derived", "chat gpt-parent"]
    tracer.uninstrument(client)
    plain = client.with_options(timeout=5)
    assert "request" not in vars(plain)
    await plain.close()
    await derived.close()


class Gateway(openai.OpenAI):
    """A wrapper library's client that sends every request through another client."""

    def __init__(self, inner: openai.OpenAI, **options: Any) -> None:
        super().__init__(**options)
        self.inner = inner

    def request(self, cast_to: Any, options: Any, **kwargs: Any) -> Any:
        return self.inner.request(cast_to, options, **kwargs)


async def test_nested_instrumented_clients_record_one_span(
    fake: FakeLLM, tracer: AsyncTracing
) -> None:
    """An instrumented client called from inside another instrumented call adds nothing."""
    inner = tracer.instrument(openai_client(fake))
    outer = tracer.instrument(Gateway(inner, base_url=fake.openai_url, api_key="k"))
    async with tracer.trace("request") as trace:
        await call("chat", outer, model="gpt-4o", text="x", stream=True)
        await call("chat", inner, model="gpt-inner", text="x", stream=False)
    assert [span.name for span in trace.spans] == ["chat gpt-4o", "chat gpt-inner"]
    assert trace.spans[0].llm_usage is not None
    outer.close()


async def test_disabled_tracer_records_nothing(fake: FakeLLM) -> None:
    tracer = AsyncTracing(enabled=False)
    client = tracer.instrument(openai_client(fake, is_async=True))
    result = await call("chat", client, model="gpt-4o", text="x", stream=False)
    assert result.choices[0].message.content == fake.served[0]["reply"]
    assert tracer.stats().enqueued == 0


async def test_metadata_only(fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder) -> None:
    """capture_content=False: no prompts or outputs, usage and metadata kept."""
    client = tracer.instrument(anthropic_client(fake, is_async=True), capture_content=False)
    async with tracer.trace("request"):
        await call("messages", client, model="claude-tools", text="secret", stream=True)
        await call("messages", client, model="claude", text="secret", stream=False)
    await tracer.flush()
    [trace] = recorder.received
    assert "secret" not in str(trace)
    for span in trace["spans"]:
        assert span["input"] is None
        assert span["output"] is None
        assert span["llmUsage"]["promptTokens"] > 0
        assert span["metadata"]["gen_ai.response.model"].startswith("claude")


async def test_mask_applies(fake: FakeLLM, recorder: Recorder) -> None:
    """The tracer's mask sees the LLM span's input, output and metadata values."""
    tracer = AsyncTracing(
        endpoint=recorder.url,
        flush_interval=0,
        mask=lambda value: (
            str(value).replace("4111", "****") if isinstance(value, str | list | dict) else value
        ),
    )
    client = tracer.instrument(openai_client(fake, is_async=True))
    async with tracer.trace("request"):
        await call("chat", client, model="gpt-4o", text="card 4111", stream=False)
    await tracer.shutdown()
    [trace] = recorder.received
    [span] = trace["spans"]
    assert "4111" not in str(span["input"])
    assert "****" in str(span["input"])
    assert "4111" not in str(span["output"])


async def test_capture_cap_and_base64_images(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """A huge prompt is cut at the 16 KiB cap; base64 images become a short marker."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    aclient = tracer.instrument(anthropic_client(fake, is_async=True))
    image = base64.b64encode(bytes(range(256)) * 400).decode()
    openai_messages: Any = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
            ],
        }
    ]
    anthropic_messages: Any = [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": image},
                },
                {"type": "text", "text": "and this?"},
            ],
        }
    ]
    async with tracer.trace("request") as trace:
        await client.chat.completions.create(model="gpt-4o", messages=openai_messages)
        await aclient.messages.create(model="claude", max_tokens=9, messages=anthropic_messages)
        await call("chat", client, model="gpt-4o", text="x" * 100_000, stream=False)
    with_url, with_source, huge = trace.spans
    part = with_url.input[0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": "<image/png base64, 102400 bytes>"}}
    source = with_source.input[0]["content"][0]["source"]
    assert source["data"] == "<image/jpeg base64, 102400 bytes>"
    assert openai_messages[0]["content"][1]["image_url"]["url"].startswith("data:")  # untouched
    assert isinstance(huge.input, str)
    assert "truncated by tracing" in huge.input
    assert len(huge.input.encode()) <= MAX_CAPTURE_BYTES


@pytest.mark.parametrize(
    ("make", "provider"),
    [
        (lambda: openai.OpenAI(api_key="k"), "openai"),
        (
            lambda: openai.OpenAI(api_key="k", base_url="https://api.groq.com/openai/v1"),
            "api.groq.com",
        ),
        (
            lambda: openai.OpenAI(api_key="k", base_url="https://x.openai.azure.com/openai/v1"),
            "azure.ai.openai",
        ),
        (
            lambda: openai.AzureOpenAI(
                api_key="k", api_version="2024-10-21", azure_endpoint="https://gw.example.com"
            ),
            "azure.ai.openai",
        ),
        (lambda: anthropic.Anthropic(api_key="k"), "anthropic"),
        (
            lambda: anthropic.AsyncAnthropic(api_key="k", base_url="http://localhost:8080"),
            "localhost",
        ),
    ],
)
async def test_provider_from_base_url(make: Any, provider: str) -> None:
    """openai / anthropic / azure.ai.openai, else the base URL's host."""
    client = make()
    sdk = "openai" if isinstance(client, openai.OpenAI | openai.AsyncOpenAI) else "anthropic"
    assert provider_of(client, sdk) == provider
    closing = client.close()
    if closing is not None:
        await closing


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "complete"])
@pytest.mark.parametrize("is_async", [True, False], ids=["async", "sync"])
async def test_azure_client(
    fake: FakeLLM, tracer: AsyncTracing, is_async: bool, stream: bool
) -> None:
    """AzureOpenAI (deployment URLs) is recorded with provider azure.ai.openai, and the
    model and id its answer names: in a stream, from the first chunk that has choices, not
    from the prompt filter's chunk Azure sends before it (no choices, empty model and id),
    which is not the first token either."""
    kind = openai.AsyncAzureOpenAI if is_async else openai.AzureOpenAI
    client = tracer.instrument(kind(api_key="k", api_version="2024-10-21", azure_endpoint=fake.url))
    async with tracer.trace("request") as trace:
        answer = await call("chat", client, model="gpt-4o", text="hi", stream=stream)
    items = answer if stream else [answer]
    closing = client.close()
    if closing is not None:
        await closing
    [served] = fake.served
    assert served["path"] == "/openai/deployments/gpt-4o/chat/completions"
    if stream:
        assert items[0].choices == []  # Azure's prompt filter chunk
        assert (items[0].model, items[0].id) == ("", "")
        assert items[1].model == "gpt-4o-2025-01-01"  # the fake's response model
    [span] = trace.spans
    assert span.llm_usage is not None
    assert span.llm_usage.provider == "azure.ai.openai"
    assert span.llm_usage.model == "gpt-4o-2025-01-01"
    assert span.llm_usage.prompt_tokens == served["prompt_tokens"]
    assert span.metadata["gen_ai.response.model"] == "gpt-4o-2025-01-01"
    assert span.metadata["gen_ai.response.id"] == items[-1].id
    assert span.metadata["gen_ai.response.id"].startswith("chatcmpl-")
    assert span.output == {"role": "assistant", "content": served["reply"]}
    if stream:
        assert span.start_time is not None
        assert span.end_time is not None
        first = span.metadata["time_to_first_token"]
        assert 0 <= first <= (span.end_time - span.start_time).total_seconds()


def test_import_tracing_imports_neither_sdk() -> None:
    """``import tracing`` (and constructing a tracer) loads no openai/anthropic/httpx."""
    code = (
        "import sys, tracing; tracing.AsyncTracing(enabled=False); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('openai', 'anthropic', 'httpx', 'httpx2')); assert not bad, bad; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


async def test_sync_client_in_many_threads(fake: FakeLLM, tracer: AsyncTracing) -> None:
    """A sync client shared by worker threads: each thread's call lands in its own trace."""
    client = tracer.instrument(openai_client(fake))

    async def one(i: int) -> Any:
        async with tracer.trace(f"t{i}") as trace:
            await call("chat", client, model="gpt-4o", text=f"thread {i}", stream=i % 2 == 0)
        return trace

    traces = await asyncio.gather(*(one(i) for i in range(16)))
    for i, trace in enumerate(traces):
        [span] = trace.spans
        assert span.output["content"].startswith(f"You said: thread {i} ")
