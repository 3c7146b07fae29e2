"""One batch to one POST: the session, the limiter, timeouts, retries and 413 splits.

Protocol-neutral: a ``WireProtocol`` (``_protocol``) encodes the batch, names the path,
the retryable statuses and reads the answer; everything else here is shared by every
protocol. aiohttp errors are translated here, and only here, into ``SendFailure``
(``from`` the root cause). Everything above this module sees outcomes, not HTTP.
"""

from __future__ import annotations

import asyncio
import io
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
import backoff
import yarl
from aiohttp.abc import ResolveResult
from aiolimiter import AsyncLimiter

from ._config import Config
from ._exceptions import SendFailure
from ._fields import _getrandbits
from ._models import ApiResponse, ReadBack, Trace
from ._outcome import Outcome, batch_result, disabled_result, in_order
from ._protocol import Answer, make_protocol, snippet
from ._retry import parse_retry_after, wait_gen
from ._version import __version__
from ._wire import WireError, gzip_body

__all__ = [
    "Counter",
    "Exporter",
    "Outcome",
    "batch_result",
    "disabled_result",
    "idempotency_key",
]

USER_AGENT = f"tracing-python/{__version__}"
Counter = Callable[..., None]
_LARGE_BODY = 1 << 20


class _Resolver(aiohttp.ThreadedResolver):
    """aiohttp's default resolver, with a blocking fallback for interpreter exit.

    At exit (the atexit attempt) the interpreter refuses new executor threads, which
    ``getaddrinfo`` on the loop needs, so a host name would never resolve. That last-chance
    loop runs alone, so a direct, blocking ``socket.getaddrinfo`` is harmless there.
    """

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            return await super().resolve(host, port, family)
        except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
            infos = socket.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(
                hostname=host,
                host=str(address[0]),
                port=int(address[1]),
                family=af,
                proto=proto,
                flags=flags,
            )
            for af, _, proto, _, address in infos
            if af in (socket.AF_INET, socket.AF_INET6)
        ]


class Exporter:
    """Posts batches to ``{endpoint}{protocol.path}``; bound to the loop it was made on."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._protocol = protocol = make_protocol(config)
        self._url = config.endpoint + protocol.path
        # Made once, not per request: aiohttp would parse the URL string and build a
        # ClientTimeout on every POST.
        self._yarl_url = yarl.URL(self._url)
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)
        self._base_headers = self._make_headers(config, protocol.content_type)
        self._session = config.session
        self._owns_session = config.session is None
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._limiter = self._make_limiter(config.rate_limit)
        self._paused_until = 0.0
        self._post = backoff.on_exception(
            wait_gen,
            SendFailure,
            max_tries=config.max_retries + 1,
            jitter=None,
            on_backoff=self._on_backoff,
            logger=None,
            base=config.retry_backoff,
            cap=config.retry_backoff_max,
        )(self._attempt)

    def __repr__(self) -> str:
        return f"<Exporter {self._url} {self._protocol!r} owns_session={self._owns_session}>"

    @staticmethod
    def _make_limiter(rate: float | None) -> AsyncLimiter | None:
        if rate is None:
            return None
        # A bucket of max(1, rate) tokens refilled at `rate` per second: bursts up to one
        # second's worth, and rates below 1/s still admit one request at a time.
        capacity = max(1.0, rate)
        return AsyncLimiter(capacity, capacity / rate)

    async def close(self) -> None:
        """Close the session if this exporter made it."""
        session, self._session = self._session, self._config.session
        if self._owns_session and session is not None and not session.closed:
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or (self._owns_session and session.closed):
            connector = aiohttp.TCPConnector(
                limit=max(self._config.max_concurrency, 10), resolver=_Resolver()
            )
            session = self._session = aiohttp.ClientSession(connector=connector)
        return session

    @staticmethod
    def _make_headers(config: Config, content_type: str) -> dict[str, str]:
        """Every request's headers but ``Idempotency-Key``: the user's ``headers`` (which
        may carry their own ``Authorization``), then the SDK's own."""
        headers = dict(config.headers)
        names = {name.lower() for name in headers}
        if config.publishable_key is not None and "authorization" not in names:
            headers["Authorization"] = f"Bearer {config.publishable_key}"
        headers["Content-Type"] = content_type
        headers["User-Agent"] = USER_AGENT
        if config.compression == "gzip":
            headers["Content-Encoding"] = "gzip"
        return headers

    def _headers(self, key: str) -> dict[str, str]:
        headers = self._base_headers.copy()
        headers["Idempotency-Key"] = key
        return headers

    @staticmethod
    def _on_backoff(details: Mapping[str, Any]) -> None:
        count: Counter | None = details["kwargs"].get("count")
        if count is not None:
            count(retries=1)

    def _pause(self, seconds: float) -> None:
        """Hold every send to the endpoint for ``seconds`` (a Retry-After)."""
        loop = asyncio.get_running_loop()
        self._paused_until = max(self._paused_until, loop.time() + seconds)

    async def _wait_if_paused(self) -> None:
        loop = asyncio.get_running_loop()
        # A loop, not an Event: another Retry-After may push the end later while we sleep.
        while (remaining := self._paused_until - loop.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining)

    async def _attempt(self, body: bytes, headers: dict[str, str], count: Counter | None) -> Answer:
        """One HTTP attempt; retryable failures raise ``SendFailure`` for backoff."""
        config = self._config
        async with self._semaphore:
            if self._limiter is not None:
                await self._limiter.acquire()
            # Checked last, right before the request: a send that was already waiting for
            # the semaphore or the limiter when a Retry-After arrived must honour it too.
            if self._paused_until:
                await self._wait_if_paused()
            try:
                async with self._get_session().post(
                    self._yarl_url,
                    # Over 1 MiB aiohttp wants a stream (it warns about raw bytes).
                    data=body if len(body) <= _LARGE_BODY else io.BytesIO(body),
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    payload = await response.read()
                    status = response.status
                    retry_after_header = response.headers.get("Retry-After")
                    content_type = response.content_type
            except TimeoutError as exc:
                raise SendFailure(f"no answer within {config.timeout}s") from exc
            except aiohttp.ClientError as exc:
                raise SendFailure(f"{type(exc).__name__}: {exc}") from exc
        if status in self._protocol.retryable:
            retry_after = parse_retry_after(retry_after_header)
            if retry_after is not None:
                retry_after = min(retry_after, config.retry_backoff_max)
                self._pause(retry_after)
            raise SendFailure(
                f"HTTP {status}{snippet(payload)}", status=status, retry_after=retry_after
            )
        return Answer(status, payload, content_type)

    async def deliver(self, traces: Sequence[Trace], count: Counter | None = None) -> Outcome:
        """Send one batch (with retries, splitting on 413) and say what became of each trace.

        Never raises for delivery problems; only cancellation propagates.
        """
        traces = list(traces)
        protocol = self._protocol
        encoded = protocol.encode_batch(traces)
        if encoded is not None:
            body, whole = encoded
            return await self._deliver_encoded(traces, whole, count, body)
        parts: list[bytes] = []
        sendable: list[Trace] = []
        broken: list[tuple[Trace, str]] = []
        for trace in traces:
            try:
                parts.append(protocol.encode_trace(trace))
                sendable.append(trace)
            except WireError as exc:
                broken.append((trace, str(exc)))
        outcome = await self._deliver_encoded(sendable, parts, count) if sendable else None
        if not broken:
            assert outcome is not None
            return outcome
        failed = Outcome(
            [t for t, _ in broken],
            [ApiResponse(t.id, False, None, message) for t, message in broken],
            [False] * len(broken),
        )
        return failed if outcome is None else in_order(traces, Outcome.merge([outcome, failed]))

    async def _deliver_encoded(
        self,
        traces: list[Trace],
        parts: list[bytes] | None,
        count: Counter | None,
        body: bytes | None = None,
    ) -> Outcome:
        """Post ``body`` (or the envelope around ``parts``, the traces' own bytes)."""
        if body is None:
            assert parts is not None
            body = self._protocol.join(parts)
        raw = body
        if self._config.compression == "gzip":
            body = gzip_body(body)
        if count is not None:
            count(batches=1)
        try:
            answer: Answer = await self._post(
                body, self._headers(idempotency_key(traces)), count=count
            )
        except SendFailure as exc:
            if parts is None:  # requeued next: keep each trace's bytes, as encode_trace does
                self._protocol.parts_of(traces, raw)
            message = f"not delivered after {self._config.max_retries + 1} attempt(s): {exc}"
            return Outcome(
                traces,
                [ApiResponse(t.id, False, exc.status, message) for t in traces],
                [True] * len(traces),
                exc,
            )
        if answer.status == 413 and len(traces) > 1:
            half = len(traces) // 2
            if parts is None:
                parts = self._protocol.parts_of(traces, raw)
            return Outcome.merge(
                await asyncio.gather(
                    self._deliver_encoded(traces[:half], parts[:half], count),
                    self._deliver_encoded(traces[half:], parts[half:], count),
                )
            )
        return self._read_answer(traces, answer)

    def _read_answer(self, traces: list[Trace], answer: Answer) -> Outcome:
        status = answer.status
        if 200 <= status < 300:
            return self._protocol.accepted(traces, answer)
        if status == 413:
            message = "HTTP 413: the trace alone is larger than the server accepts"
        else:
            message = f"HTTP {status}{self._protocol.describe(answer)}"
            if status in (404, 405):
                message += f" (POST {self._url}: is the endpoint, path prefix included, right?)"
        responses = [ApiResponse(t.id, False, status, message) for t in traces]
        return Outcome(traces, responses, [False] * len(traces))


_KEYS = uuid.UUID("1b0e4f0e-5c57-4d52-9a8e-7370ee1d0b52")


def idempotency_key(traces: Sequence[Trace]) -> str:
    """One batch's ``Idempotency-Key``: random, or derived from the trace ids (uuid5 of
    the sorted ids) when the batch holds traces read back from a spool (``ReadBack``), so
    a batch replayed again after another crash carries the same key for the same traces.

    A live batch keeps its random key even with a spool: after a crash its traces are
    read back in pieces that need not match the batch, so a derived key would buy nothing
    there, and sorting and hashing 100 ids the flusher has not touched cost ~0.5 µs of
    the loop per trace in the spool benchmark (benchmarks/RESULTS.md)."""
    for trace in traces:
        if type(trace._spool) is ReadBack:
            return str(uuid.uuid5(_KEYS, "\n".join(sorted(trace.id for trace in traces))))
    return _random_uuid()


# A random (version 4) UUID's bits: the version nibble and the RFC 4122 variant.
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def _random_uuid() -> str:
    """``str(uuid.uuid4())`` from the generator the trace and span ids use (reseeded in a
    forked child): no ``os.urandom`` system call and no ``UUID`` object, which cost ~45 us
    of the loop per batch in the service benchmark (benchmarks/README.md)."""
    h = f"{_getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
