"""The event loop lends the spool writer the GIL when the writer has waited for it too
long (``tracing._spool_gil``), and only then; the timer stops itself when not needed."""

from __future__ import annotations

import asyncio
import math
import time

from tracing._spool_gil import IDLE_TICKS, LATE, TICK, Lender


async def ticks(count: int) -> None:
    """Let the loop run at least ``count`` of the lender's ticks."""
    await asyncio.sleep(count * TICK * 1.5)


async def test_a_late_writer_is_lent_the_gil_on_every_tick() -> None:
    lender = Lender()
    lender.wants = time.monotonic() - 2 * LATE  # wanted the GIL 10 ms ago
    lender.arm()
    assert lender.lent == 0
    async with asyncio.timeout(10):
        while lender.lent < 3:  # noqa: ASYNC110 (the ticks are the loop's own timers)
            await asyncio.sleep(TICK)
    lender.disarm()
    assert lender.wants == math.inf


async def test_a_writer_keeping_up_is_left_alone_and_the_timer_stops() -> None:
    lender = Lender()
    lender.wants = math.inf  # waiting for its next group: nothing wanted now
    lender.arm()
    assert repr(lender) == "<Lender armed=True lent=0>"
    await ticks(IDLE_TICKS + 5)
    assert lender.lent == 0
    assert repr(lender) == "<Lender armed=False lent=0>"  # stopped itself
    lender.wants = time.monotonic() - 2 * LATE
    await ticks(3)
    assert lender.lent == 0  # nothing lends until it is armed again
    lender.arm()
    async with asyncio.timeout(10):
        while not lender.lent:  # noqa: ASYNC110 (the ticks are the loop's own timers)
            await asyncio.sleep(TICK)


async def test_a_writer_not_yet_due_is_not_lent() -> None:
    lender = Lender()
    lender.wants = time.monotonic() + 0.2  # its next group is due in 200 ms
    lender.arm()
    await ticks(5)
    assert lender.lent == 0
    lender.disarm()


async def test_disarm_stops_the_timer_and_a_second_arm_keeps_one_timer() -> None:
    lender = Lender()
    lender.wants = time.monotonic() - 2 * LATE
    lender.arm()
    lender.arm()  # the same loop: still one timer
    started = time.monotonic()
    async with asyncio.timeout(10):
        while lender.lent < 6:  # noqa: ASYNC110 (the ticks are the loop's own timers)
            await asyncio.sleep(TICK)
    elapsed = time.monotonic() - started
    assert elapsed >= 5 * TICK  # one lend per tick: two timers would lend twice as often
    lender.disarm()
    before = lender.lent
    await ticks(4)
    assert lender.lent <= before + 1  # at most a tick already due when disarmed
