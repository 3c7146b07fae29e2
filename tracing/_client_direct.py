"""``send_batch()``/``send_batch_sequential()``: sending now, bypassing the queue.

A mixin of ``AsyncTracing`` (``_client``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ._client_events import _State
from ._config import Config
from ._exceptions import TracingError
from ._exporter import Outcome, batch_result, disabled_result
from ._filters import apply_mask
from ._flusher import Flusher
from ._models import BatchResult, Trace

__all__ = ["_DirectSending"]


class _DirectSending:
    """The direct sending calls of ``AsyncTracing``; its ``__init__`` sets these."""

    _config: Config
    _enabled: bool
    _flusher: Flusher
    _state: _State

    # Direct sending --------------------------------------------------------------------

    async def send_batch(self, traces: Sequence[Trace]) -> BatchResult:
        """Send now, bypassing the queue and its counters, in concurrent requests.

        Requests carry at most ``max_batch_size`` traces; at most ``max_concurrency`` are
        in flight, behind the rate limiter, each with the usual retries.

        Returns:
            A ``BatchResult`` with one ``ApiResponse`` per trace, in input order.

        Raises:
            BatchError: no request got an answer (all failed at the transport or with a
                retryable status after their retries).
        """
        chunks = self._chunks(traces)
        if chunks is None:
            return disabled_result(traces)
        exporter = self._flusher.exporter
        outcomes = await asyncio.gather(*(exporter.deliver(chunk) for chunk in chunks))
        return batch_result(Outcome.merge(outcomes))

    async def send_batch_sequential(self, traces: Sequence[Trace]) -> BatchResult:
        """Like ``send_batch()``, but one request at a time, in order."""
        chunks = self._chunks(traces)
        if chunks is None:
            return disabled_result(traces)
        exporter = self._flusher.exporter
        outcomes = [await exporter.deliver(chunk) for chunk in chunks]
        return batch_result(Outcome.merge(outcomes))

    def _chunks(self, traces: Sequence[Trace]) -> list[list[Trace]] | None:
        if not self._enabled:
            return None
        if self._state is _State.CLOSED:
            raise TracingError("this AsyncTracing is shut down; call start() to use it again")
        traces = list(traces)
        for trace in traces:
            if not isinstance(trace, Trace):
                raise ValueError(f"traces must hold Trace objects, got {trace!r}")
        if self._state is _State.NEW:
            self._state = _State.RUNNING
        self._flusher.ensure_started()
        mask = self._config.mask
        for trace in traces:
            if not trace._ended:
                trace._finish()
            if mask is not None:
                apply_mask(trace, mask)
        size = self._config.max_batch_size
        return [traces[i : i + size] for i in range(0, len(traces), size)]
