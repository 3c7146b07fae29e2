"""current_trace()/current_span() across await, create_task, gather and TaskGroup."""

from __future__ import annotations

import asyncio

from tracing import AsyncTracing, Span, Trace, current_span, current_trace

TASKS = 200


async def _leaf(trace: Trace, parent: Span, label: str) -> None:
    await asyncio.sleep(0)
    assert current_trace() is trace
    assert current_span() is parent
    with trace.span(label) as span:  # no explicit parent: the current span
        await asyncio.sleep(0)
        assert current_span() is span
    assert current_span() is parent


async def _request(tracer: AsyncTracing, n: int) -> Trace:
    async with tracer.trace(f"request-{n}") as trace:
        assert current_trace() is trace
        with trace.span(f"gather-{n}") as gathering:
            await asyncio.gather(*(_leaf(trace, gathering, f"g{n}") for _ in range(3)))
        with trace.span(f"group-{n}") as grouping:
            async with asyncio.TaskGroup() as group:
                for _ in range(3):
                    group.create_task(_leaf(trace, grouping, f"t{n}"))
        with trace.span(f"task-{n}") as tasking:
            await asyncio.create_task(_leaf(trace, tasking, f"c{n}"))
    return trace


async def test_many_concurrent_traces_keep_their_own_spans() -> None:
    """200 concurrent traces: every span has the right trace and parent, no cross-talk."""
    tracer = AsyncTracing(enabled=False)
    traces = await asyncio.gather(*(_request(tracer, n) for n in range(TASKS)))
    assert current_trace() is None
    assert current_span() is None
    for n, trace in enumerate(traces):
        by_id = {span.id: span for span in trace.spans}
        assert len(trace.spans) == 10  # 3 parents, 3 + 3 + 1 children
        tops = {s.name: s for s in trace.spans if s.parent_id is None}
        assert set(tops) == {f"gather-{n}", f"group-{n}", f"task-{n}"}
        for span in trace.spans:
            if span.parent_id is None:
                continue
            parent = by_id[span.parent_id]
            expected = {"g": "gather", "t": "group", "c": "task"}[span.name[0]]
            assert parent.name == f"{expected}-{n}"
            assert span.name[1:] == str(n)
            assert span.end_time is not None


async def test_observed_calls_in_task_groups_nest_under_their_caller(tracer: AsyncTracing) -> None:
    """Decorated calls fanned out with TaskGroup and gather nest under the caller's span."""
    finished: list[Trace] = []

    @tracer.observe("leaf")
    async def leaf(n: int) -> int:
        await asyncio.sleep(0)
        return n

    @tracer.observe("fan")
    async def fan(n: int) -> int:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(leaf(n)) for _ in range(4)]
        more = await asyncio.gather(*(leaf(n) for _ in range(4)))
        return sum(t.result() for t in tasks) + sum(more)

    @tracer.observe("job")
    async def job(n: int) -> int:
        trace = current_trace()
        assert trace is not None
        finished.append(trace)
        return await fan(n)

    results = await asyncio.gather(*(job(n) for n in range(100)))
    assert results == [8 * n for n in range(100)]
    for n, trace in enumerate(finished):
        fans = [s for s in trace.spans if s.name == "fan"]
        leaves = [s for s in trace.spans if s.name == "leaf"]
        assert len(fans) == 1
        assert fans[0].parent_id is None
        assert trace.input == {"n": n}
        assert len(leaves) == 8
        assert all(s.parent_id == fans[0].id and s.input == {"n": n} for s in leaves)
