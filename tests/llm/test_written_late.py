"""The span of an LLM call is written out when it is first read (``tracing._llm._lazy``):
whoever reads it (the wire and OTLP encoders, the mask, ``on_error``, a user looking at
the trace) sees what the call sent and received, whatever the caller does afterwards
with its messages or with the response."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from tests._otlp import attributes, decode_request, spans_of
from tests._server import FaultServer
from tests.conftest import MakeTracer
from tests.integrations.conftest import Recorder, delivered
from tests.llm._calls import call
from tests.llm.conftest import FakeLLM, anthropic_client, openai_client
from tracing import AsyncTracing, Span, Trace, current_trace


def _create(kind: str, client: Any, messages: list[dict[str, Any]]) -> Any:
    if kind == "chat":
        return client.chat.completions.create(model="gpt-4o", messages=messages)
    return client.messages.create(model="claude-x", max_tokens=64, messages=messages)


@pytest.mark.parametrize("kind", ["chat", "messages"])
async def test_messages_changed_after_the_call_are_recorded_as_sent(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder, kind: str
) -> None:
    """The caller reuses and changes its messages list once the call returned (anthropic's
    SDK sends the caller's own list and dicts): the span still has what was sent."""
    make = openai_client if kind == "chat" else anthropic_client
    client = tracer.instrument(make(fake, is_async=True))
    messages: list[dict[str, Any]] = [{"role": "user", "content": "the first question"}]
    await _create(kind, client, messages)
    messages[0]["content"] = "changed afterwards"
    messages.append({"role": "user", "content": "appended afterwards"})
    [trace] = await delivered(tracer, recorder)
    assert trace["spans"][0]["input"] == [{"role": "user", "content": "the first question"}]


@pytest.mark.parametrize("kind", ["chat", "messages"])
async def test_the_span_read_inside_the_trace_shows_the_call(
    fake: FakeLLM, tracer: AsyncTracing, kind: str
) -> None:
    """A user reading the span right after the call sees every field written: a Span with
    UTC times, the input, the output, the usage and the response's metadata."""
    make = openai_client if kind == "chat" else anthropic_client
    client = tracer.instrument(make(fake, is_async=True))
    async with tracer.trace("request") as trace:
        before = datetime.now(UTC)
        await call(kind, client, model="m-read", text="hello there", stream=False)
        after = datetime.now(UTC)
        [span] = trace.spans
        assert isinstance(span, Span)
        assert repr(span).startswith("Span(name=")
        assert attrs.asdict(span)["name"] == span.name
        assert span.start_time.tzinfo is UTC
        assert span.end_time is not None
        assert before <= span.start_time <= span.end_time <= after
        assert span.duration is not None
        assert span.duration >= 0
        assert span.input[-1] == {"role": "user", "content": "hello there"}
        assert span.output["content"]
        assert span.llm_usage is not None
        assert span.llm_usage.prompt_tokens == fake.served[0]["prompt_tokens"]
        assert span.metadata["gen_ai.response.model"] == fake.served[0]["response_model"]
        assert span.metadata["gen_ai.request.model"] == "m-read"
        span.metadata["mine"] = 1  # the user's own key goes out with the rest
    await tracer.flush()


async def test_a_stream_read_midway_shows_its_start_then_its_end(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """Read while the stream runs: the start is there, the end not yet; read after it
    ended: the end too, as the eager span had it."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    async with tracer.trace("request") as trace:
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "stream it"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        [span] = trace.spans
        assert span.input == [{"role": "user", "content": "stream it"}]
        assert span.start_time is not None
        assert span.end_time is None
        assert span.output is None
        assert span.llm_usage is None
        assert "gen_ai.response.model" not in span.metadata
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert span.end_time is not None
        assert span.output == {"role": "assistant", "content": text}
        assert span.llm_usage is not None
        assert span.metadata["gen_ai.response.model"] == fake.served[0]["response_model"]
    [sent] = await delivered(tracer, recorder)
    assert sent["spans"][0]["output"]["content"] == text


async def test_on_error_sees_the_written_trace(fake: FakeLLM, server: FaultServer) -> None:
    """A trace the collector rejects reaches on_error whole: the Trace and its span,
    with the call's output and usage, and its times."""
    seen: list[Trace] = []
    server.respond_with(400)
    tracer = AsyncTracing(
        endpoint=server.url,
        flush_interval=0,
        max_retries=0,
        on_error=lambda exc, traces: seen.extend(traces),
    )
    client = tracer.instrument(openai_client(fake, is_async=True))
    await call("chat", client, model="gpt-4o", text="rejected", stream=False)
    await tracer.shutdown(timeout=10)
    [trace] = seen
    [span] = trace.spans
    assert isinstance(trace, Trace)
    assert trace.start_time == span.start_time
    assert trace.end_time == span.end_time is not None
    assert span.output is not None
    assert span.llm_usage is not None
    assert span.llm_usage.completion_tokens == fake.served[0]["completion_tokens"]
    assert repr(trace).startswith("Trace(name=")


async def test_otlp_gets_the_same_values(
    fake: FakeLLM, server: FaultServer, make_tracer: MakeTracer
) -> None:
    """OTLP mode encodes the same written-out span: input, output, model, tokens, times."""
    tracer = make_tracer(protocol="otlp")
    client = tracer.instrument(anthropic_client(fake, is_async=True))
    await call("messages", client, model="claude-otlp", text="to otlp", stream=False)
    await tracer.flush()
    [request] = server.requests
    spans = spans_of(decode_request(request.raw))
    [llm] = [span for span in spans if span.parent_span_id]
    values = attributes(llm)
    served = fake.served[0]
    assert values["gen_ai.usage.input_tokens"] == served["prompt_tokens"]
    assert values["gen_ai.usage.output_tokens"] == served["completion_tokens"]
    assert values["metadata.gen_ai.response.model"] == served["response_model"]
    assert "to otlp" in values["input.value"]
    assert values["output.value"]
    assert 0 < llm.start_time_unix_nano <= llm.end_time_unix_nano


async def test_a_response_changed_after_the_call_is_recorded_as_received(
    fake: FakeLLM,
    tracer: AsyncTracing,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The response is read when it arrives (only writing it into the span waits): the
    caller changing or breaking it afterwards changes nothing in the span."""

    class Broken:
        def __iter__(self) -> Any:
            raise RuntimeError("unreadable")

    client = tracer.instrument(openai_client(fake, is_async=True))
    response = await call("chat", client, model="gpt-4o", text="x", stream=False)
    content = response.choices[0].message.content
    response.choices = Broken()
    response.model = "changed"
    with caplog.at_level(logging.WARNING, logger="tracing"):
        [trace] = await delivered(tracer, recorder)
    assert "could not" not in caplog.text
    [span] = trace["spans"]
    assert span["output"] == {"role": "assistant", "content": content}
    assert span["metadata"]["gen_ai.response.model"] == fake.served[0]["response_model"]
    assert span["metadata"]["gen_ai.response.finish_reasons"] == ["stop"]
    assert span["input"] == [{"role": "user", "content": "x"}]


async def test_an_input_orjson_cannot_take_is_shaped_at_call_time(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """A message holding an SDK object (the previous answer's message, as anthropic's SDK
    passes it on) is snapshotted by the careful path at call time, as before."""
    client = tracer.instrument(anthropic_client(fake, is_async=True))
    first = await call("messages", client, model="claude-x", text="first", stream=False)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": first.content},  # pydantic blocks
        {"role": "user", "content": "second"},
    ]
    await client.messages.create(model="claude-x", max_tokens=64, messages=messages)
    messages.clear()
    received = await delivered(tracer, recorder)
    second = received[-1]["spans"][0]["input"]
    assert [message["role"] for message in second] == ["user", "assistant", "user"]
    assert second[1]["content"][0]["text"] == first.content[0].text
    assert current_trace() is None


async def test_every_request_parameter_given_is_in_metadata(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """Several sampling parameters at once (the body's unset ones left out): each under
    its GenAI name; of max_tokens and max_completion_tokens, both given, the later in the
    SDK's body (max_tokens) wins, as the body had them."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    aclient = tracer.instrument(anthropic_client(fake, is_async=True))
    messages: Any = [{"role": "user", "content": "params"}]
    await client.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        temperature=0.2,
        top_p=0.9,
        seed=7,
        stop=["END"],
        max_completion_tokens=50,
        max_tokens=40,
    )
    await aclient.messages.create(
        model="claude-x", max_tokens=64, messages=messages, stop_sequences=["Z"]
    )
    chat, claude = (trace["spans"][0]["metadata"] for trace in await delivered(tracer, recorder))
    assert chat["gen_ai.request.temperature"] == 0.2
    assert chat["gen_ai.request.top_p"] == 0.9
    assert chat["gen_ai.request.seed"] == 7
    assert chat["gen_ai.request.stop_sequences"] == ["END"]
    assert chat["gen_ai.request.max_tokens"] == 40
    assert claude["gen_ai.request.max_tokens"] == 64
    assert claude["gen_ai.request.stop_sequences"] == ["Z"]
    assert not {"gen_ai.request.temperature", "gen_ai.request.top_p"} & set(claude)


async def test_request_parameters_are_those_sent_when_the_span_is_written_late(
    fake: FakeLLM, tracer: AsyncTracing, recorder: Recorder
) -> None:
    """The metadata is made when the span is written, from the body the SDK made for the
    call: the caller's arguments changed once the call returned do not show (OpenAI's SDK
    copies the stop list into the body)."""
    client = tracer.instrument(openai_client(fake, is_async=True))
    stop = ["END"]
    arguments: dict[str, Any] = {"temperature": 0.2, "stop": stop}
    messages: Any = [{"role": "user", "content": "params"}]
    await client.chat.completions.create(model="gpt-4o", messages=messages, **arguments)
    arguments["temperature"] = 0.9
    stop.append("MORE")
    [trace] = await delivered(tracer, recorder)
    metadata = trace["spans"][0]["metadata"]
    assert metadata["gen_ai.request.temperature"] == 0.2
    assert metadata["gen_ai.request.stop_sequences"] == ["END"]
    assert metadata["gen_ai.request.model"] == "gpt-4o"
    assert metadata["stream"] is False
