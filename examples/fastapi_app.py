"""A FastAPI service traced end to end: one trace per request, one span per step.

    pip install 'aiotracing[fastapi]' uvicorn     # FastAPI does not bring a server
    python -m tracing.collector &                 # the receiver, on 127.0.0.1:7070
    uvicorn examples.fastapi_app:app
    curl 'http://127.0.0.1:8000/answer?question=why'

Traces go to TRACING_ENDPOINT (default http://127.0.0.1:7070); open that URL to see them.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, HTTPException

from tracing import AsyncTracing, LlmUsage, current_span
from tracing.integrations.fastapi import TracingMiddleware, lifespan

tracer = AsyncTracing()
app = FastAPI(lifespan=lifespan(tracer))  # starts the SDK, drains it on shutdown
app.add_middleware(TracingMiddleware, tracer=tracer)


@tracer.observe()
async def retrieve(question: str, k: int = 2) -> list[str]:
    await asyncio.sleep(0.01)  # stands in for a vector search
    return [f"doc {i} about {question}" for i in range(k)]


@tracer.observe()
async def generate(question: str, docs: list[str]) -> str:
    await asyncio.sleep(0.05)  # stands in for an LLM call
    span = current_span()
    if span is not None:
        span.llm_usage = LlmUsage("gpt-4o-mini", "openai", prompt_tokens=42, completion_tokens=7)
    return f"Because of {docs[0]}."


@app.get("/answer")
async def answer(question: str) -> dict[str, str]:
    docs = await retrieve(question)  # a span of this request's trace
    return {"answer": await generate(question, docs)}


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    if item_id < 0:
        raise HTTPException(status_code=404, detail="no such item")
    if item_id == 0:
        raise RuntimeError("item 0 is cursed")  # traced as an error, status 500
    return {"item_id": item_id}
