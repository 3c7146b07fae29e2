"""A hypothesis state machine over enqueue / flush / server up-down / crash / restart, with
the spool in real processes: the invariant holds after every step, and every accepted
trace is delivered (a killed process's: if accepted >= 0.1 s before the kill)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from tests._server import FaultServer, Reply
from tests.spool._child import Child, check_counts

OPTIONS = {"max_queue_size": 15, "flush_at": 5, "max_batch_size": 5, "timeout": 1.0}


class SpoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = TemporaryDirectory()
        self.spool_dir = Path(self.tmp.name) / "spool"
        self.server = self.run(FaultServer().start())
        self.must: set[str] = set()
        self.recent: dict[str, float] = {}  # accepted by the live child, with times
        self.crashed = False
        self.child: Child | None = None

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 60))

    def ask(self, op: str, **args: Any) -> Any:
        assert self.child is not None
        answer = self.run(self.child.ask(op, **args))
        check_counts(answer)
        return answer

    @initialize()
    def start(self) -> None:
        self.child = self.run(Child(self.server.url, self.spool_dir, OPTIONS).start())

    @rule(count=st.integers(1, 25))
    def enqueue(self, count: int) -> None:
        answer = self.ask("enqueue", n=count)
        for trace_id in answer["ids"]:
            self.recent[trace_id] = answer["t"]

    @rule()
    def flush(self) -> None:
        self.ask("flush")

    @rule(up=st.booleans())
    def server_state(self, up: bool) -> None:
        self.server.default = Reply(200) if up else Reply(503)

    @rule()
    def crash(self) -> None:
        assert self.child is not None
        self.child.kill()
        killed = time.monotonic()
        self.run(self.child.finish())
        self.must |= {i for i, t in self.recent.items() if t <= killed - 0.1}
        self.recent = {}
        self.crashed = True
        self.start()

    @rule()
    def restart(self) -> None:
        self.ask("shutdown", timeout=2)
        assert self.child is not None
        assert self.run(self.child.finish()) == 0
        self.must |= set(self.recent)  # shut down cleanly: delivered or on disk
        self.recent = {}
        self.start()

    def teardown(self) -> None:
        try:
            self.server.default = Reply(200)
            self.must |= set(self.recent)
            self.run(self._deliver_all())
            accepted = self.server.accepted_ids()
            assert self.must <= set(accepted)
            if not self.crashed:
                assert len(accepted) == len(set(accepted)), "sent twice without a crash"
        finally:
            if self.child is not None and self.child.proc is not None:
                if self.child.proc.returncode is None:
                    self.child.kill()
                self.run(self.child.finish())
            self.run(self.server.close())
            self.loop.close()
            self.tmp.cleanup()

    async def _deliver_all(self) -> None:
        async with asyncio.timeout(50):
            while not self.must <= set(self.server.accepted_ids()):  # noqa: ASYNC110 (polls another process)
                await asyncio.sleep(0.05)
        assert self.child is not None
        await self.child.ask("shutdown", timeout=5)


SpoolMachine.TestCase.settings = settings(
    max_examples=4,
    stateful_step_count=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_spool_model = pytest.mark.timeout(300)(SpoolMachine.TestCase)
