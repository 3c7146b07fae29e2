"""The exceptions the SDK raises.

::

    TracingError(Exception)
    ├── DeliveryError   flush() could not deliver; the traces went back to the queue
    └── BatchError      send_batch*() got no answer for any request

Only ``flush()``, ``send_batch()``/``send_batch_sequential()`` and bad arguments raise;
tracing calls on the hot path never do.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["BatchError", "DeliveryError", "TracingError"]


class TracingError(Exception):
    """Base class of every error this SDK raises on purpose."""


class DeliveryError(TracingError):
    """``flush()`` could not deliver some traces; they are back at the front of the queue.

    Attributes:
        requeued: how many traces went back to the queue.

    ``__cause__`` is the last failure (a transport error or a retryable HTTP status).
    """

    def __init__(self, message: str, *, requeued: int) -> None:
        super().__init__(message)
        self.requeued = requeued


class BatchError(TracingError):
    """``send_batch()`` got no answer for any of its requests.

    Raised only when every request failed at the transport or with a retryable status
    after its retries. Traces the server rejected are results, not errors.

    Attributes:
        total: how many traces were to be sent.
        failed: how many were not delivered (all of them).
        errors: one message per failed trace, in input order.
    """

    def __init__(self, message: str, *, total: int, failed: int, errors: Sequence[str]) -> None:
        super().__init__(message)
        self.total = total
        self.failed = failed
        self.errors = list(errors)


class SendFailure(TracingError):
    """Private: one HTTP attempt failed in a way that may be retried.

    Raised by the exporter for connection errors, timeouts and retryable statuses, always
    ``from`` the root cause when there is one.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
