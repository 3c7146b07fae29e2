"""``enqueue()`` from worker threads: safe, non-blocking, every trace delivered once."""

from __future__ import annotations

import asyncio
import threading

from tests._helpers import FAST
from tests._proc import run_script
from tests._server import FaultServer, check_invariant
from tests.conftest import MakeTracer
from tracing import AsyncTracing, Stats, Trace

THREADS = 8
PER_THREAD = 100


def join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


async def test_many_threads_deliver_exactly_once(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Eight threads enqueue 100 traces each; all 800 arrive exactly once."""
    tracer = make_tracer(flush_at=25, max_batch_size=50, max_queue_size=10_000)
    await tracer.start()
    start = threading.Barrier(THREADS)
    results: list[bool] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        start.wait()
        local = [tracer.enqueue(Trace("t", id=f"w{n}-{i}")) for i in range(PER_THREAD)]
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    await asyncio.to_thread(join_all, threads)
    assert results == [True] * THREADS * PER_THREAD
    check_invariant(tracer.stats())
    await tracer.flush()
    ids = server.accepted_ids()
    assert len(ids) == len(set(ids)) == THREADS * PER_THREAD
    assert all(len(r.trace_ids) <= 50 for r in server.requests)
    stats = tracer.stats()
    assert (stats.enqueued, stats.sent) == (800, 800)
    check_invariant(stats)


async def test_thread_enqueue_wakes_the_flusher(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Reaching flush_at from another thread wakes the loop's flusher (no flush() call)."""
    tracer = make_tracer(flush_at=10)
    await tracer.start()

    def worker() -> None:
        for i in range(10):
            tracer.enqueue(Trace("t", id=f"t-{i}"))

    await asyncio.to_thread(worker)
    await server.wait_for_traces(10)
    await tracer.flush()  # settled: the flusher is back to waiting

    def more() -> None:
        for i in range(10):
            tracer.enqueue(Trace("t", id=f"again-{i}"))

    await asyncio.to_thread(more)  # a second hand-off from a thread wakes it again
    await server.wait_for_traces(20)


async def test_threads_before_any_loop_started(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Traces enqueued from threads before the tracer ever started are sent on flush()."""
    tracer = make_tracer(flush_at=1000)

    def worker(n: int) -> None:
        for i in range(20):
            tracer.enqueue(Trace("t", id=f"w{n}-{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    await asyncio.to_thread(join_all, threads)
    await tracer.flush()
    assert len(set(server.accepted_ids())) == len(server.accepted_ids()) == 80


async def test_flush_at_reached_from_a_thread_before_any_start(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """Reaching flush_at from a thread before the tracer ever started is fine: the traces
    wait, and go out at the first flush()."""
    tracer = make_tracer(flush_at=2)
    results: list[bool] = []
    worker = threading.Thread(
        target=lambda: results.extend(tracer.enqueue(t) for t in [Trace("a"), Trace("b")])
    )
    worker.start()
    await asyncio.to_thread(worker.join)
    assert results == [True, True]
    await tracer.flush()
    assert len(server.accepted_ids()) == 2


async def test_threads_in_a_subprocess(server: FaultServer) -> None:
    """A real process whose worker threads trace while the loop runs delivers them all."""
    code, out, err = await run_script("threads.py", server.url)
    assert code == 0, err
    ids = server.accepted_ids()
    assert len(ids) == len(set(ids)) == 16 * 50
    assert out.strip() == "sent=800 failed=0 dropped=0"


async def test_a_tracer_stays_on_the_loop_that_runs_it(server: FaultServer) -> None:
    """A tracer whose flusher runs on a loop in another thread keeps it there: enqueue()
    from this loop queues the trace, that loop's flusher sends it, and that loop's
    shutdown() ends it cleanly."""
    tracer = AsyncTracing(endpoint=server.url, **{**FAST, "flush_at": 1})
    running, stop = threading.Event(), threading.Event()
    outcome: list[object] = []

    def elsewhere() -> None:
        async def main() -> None:
            await tracer.start()
            running.set()
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)
            outcome.append(await tracer.shutdown())

        asyncio.run(main())

    thread = threading.Thread(target=elsewhere)
    thread.start()
    try:
        await asyncio.to_thread(running.wait)
        assert tracer.enqueue(Trace("from here", id="here"))
        await server.wait_for_traces(1)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
    (stats,) = outcome
    assert isinstance(stats, Stats)
    assert (stats.enqueued, stats.sent, stats.queue_size, stats.in_flight) == (1, 1, 0, 0)
    assert server.accepted_ids() == ["here"]


def test_queue_put_releases_its_lock_queued_or_dropped() -> None:
    """``TraceQueue.put`` takes its lock by hand (acquire/release, not ``with``): both of
    its returns, queued and refused, leave the lock free for the next caller."""
    from tracing._queue import TraceQueue

    queue = TraceQueue(max_size=1)
    assert queue.put(Trace("a", id="a")) is True
    assert not queue._lock.locked()
    assert queue.put(Trace("b", id="b")) is False
    assert not queue._lock.locked()
    stats = queue.snapshot()  # takes the lock: would block had a put kept it
    assert (stats.enqueued, stats.dropped, stats.queue_size) == (2, 1, 1)
