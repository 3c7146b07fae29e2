"""Queue traces and exit without shutdown(); atexit must deliver them.

argv: endpoint, mode, count[, timeout]. Modes: "asyncio_run" (the loop is closed by
asyncio.run), "closed_loop" (a loop closed by hand), "no_loop" (enqueue() with no loop
ever), "threads" (enqueue() from a thread, no loop), "dropped" (the application lets go
of the tracer and collects garbage), "in_flight" (a loop closed by hand while every
trace is in flight, none queued; the server must be slow), "session" (a tracer given
the application's own aiohttp session, inside asyncio.run), "loop_thread" (the tracer's
loop still runs, in a daemon thread, when the interpreter exits; "loop_thread_in_flight":
the same with every trace in flight; the server must be slow; "loop_thread_blocked": the
same with that loop stuck in a blocking call), "shutdown" (a clean
shutdown, for contrast).
Prints the ids it queued; ``on_error`` writes ``on_error: <ids>`` to stderr. The protocol
is $TEST_PROTOCOL ("tracing" unless set).
"""

import asyncio
import os
import sys
import threading
import time

from tracing import AsyncTracing, Trace

endpoint, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0


def on_error(exc: Exception, traces: object) -> None:
    print("on_error:", *sorted(t.id for t in traces), file=sys.stderr)  # type: ignore[attr-defined]


tracer = AsyncTracing(
    on_error=on_error,
    endpoint=endpoint,
    flush_at=100,
    flush_interval=0,
    timeout=timeout,
    retry_backoff=0.001,
    retry_backoff_max=0.01,
    protocol=os.environ.get("TEST_PROTOCOL", "tracing"),
)
items = [Trace("exit", id=f"exit-{i}") for i in range(count)]


async def queue_them() -> None:
    for item in items:
        assert tracer.enqueue(item)
    if mode == "shutdown":
        await tracer.shutdown()


async def put_in_flight() -> asyncio.Future[None]:
    """Queue every trace and send them in one batch; return once all are in flight."""
    await queue_them()
    flushing = asyncio.ensure_future(tracer.flush())  # the batch goes in flight
    async with asyncio.timeout(20):  # a bounded poll: the SDK has no event for it
        while tracer.stats().in_flight < count:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
    return flushing


if mode in ("asyncio_run", "shutdown"):
    asyncio.run(queue_them())
elif mode == "closed_loop":
    loop = asyncio.new_event_loop()
    loop.run_until_complete(queue_them())
    loop.close()
elif mode == "in_flight":

    async def send_and_leave() -> None:
        flushing = await put_in_flight()
        assert tracer.stats().queue_size == 0
        flushing.cancel()  # left pending: the loop is closed under it

    loop = asyncio.new_event_loop()
    loop.run_until_complete(send_and_leave())
    loop.close()
elif mode == "session":
    import aiohttp

    async def with_a_session() -> AsyncTracing:
        session = aiohttp.ClientSession()  # the app's, bound to this loop: dead at exit
        own = AsyncTracing(endpoint=endpoint, session=session, flush_at=100, timeout=timeout)
        for item in items:
            assert own.enqueue(item)
        return own

    kept = asyncio.run(with_a_session())
elif mode in ("loop_thread", "loop_thread_in_flight", "loop_thread_blocked"):

    async def in_flight() -> None:
        flushing = await put_in_flight()
        assert not flushing.done()  # still in flight when the interpreter exits

    background = asyncio.new_event_loop()
    threading.Thread(target=background.run_forever, daemon=True).start()
    work = in_flight() if mode == "loop_thread_in_flight" else queue_them()
    asyncio.run_coroutine_threadsafe(work, background).result(30)
    stats = tracer.stats()  # nothing was sent before exit: flush_interval=0
    assert stats.sent == 0, stats
    assert stats.queue_size + stats.in_flight == count, stats
    if mode == "loop_thread_blocked":
        stuck = threading.Event()

        def block() -> None:
            stuck.set()
            time.sleep(3600)  # the loop's thread never comes back from this callback

        background.call_soon_threadsafe(block)
        assert stuck.wait(30)
elif mode == "no_loop":
    for item in items:
        assert tracer.enqueue(item)
elif mode == "dropped":
    import gc

    for item in items:
        assert tracer.enqueue(item)
    del tracer, item
    gc.collect()
elif mode == "threads":
    thread = threading.Thread(target=lambda: [tracer.enqueue(i) for i in items])
    thread.start()
    thread.join()
for item in items:
    print(item.id)
