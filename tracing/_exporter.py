"""One batch to one POST: the session, the limiter, timeouts, retries and 413 splits.

aiohttp errors are translated here, and only here, into ``SendFailure`` (``from`` the
root cause). Everything above this module sees outcomes, not HTTP.
"""

from __future__ import annotations

import asyncio
import html
import re
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
import attrs
import backoff
import orjson
from aiohttp.abc import ResolveResult
from aiolimiter import AsyncLimiter

from ._config import Config
from ._exceptions import BatchError, SendFailure
from ._models import ApiResponse, BatchResult, Trace, utcnow
from ._retry import RETRYABLE, parse_retry_after, wait_gen
from ._version import __version__
from ._wire import (
    WireError,
    cache_parts,
    encode_batch,
    encode_body,
    encode_trace,
    gzip_body,
    parse_results,
)

__all__ = ["Counter", "Exporter", "Outcome", "batch_result", "disabled_result"]

USER_AGENT = f"tracing-python/{__version__}"
Counter = Callable[..., None]
_SNIPPET = 120


_ACCEPTED = (True, "ok")


@attrs.define
class Outcome:
    """What became of each trace of a batch, in input order.

    ``retryable[i]`` marks a trace that got no answer (transport error, or a retryable
    status after the last retry): it may be sent again. The others were answered.

    A 2xx answer keeps its per-trace results (``_answer``) and makes the ``ApiResponse``
    objects only when ``responses`` is read (``send_batch()``): the flusher needs only
    who was delivered and who was rejected, and one frozen ``ApiResponse`` per trace cost
    ~0.45 us of the loop's time (benchmarks/README.md).
    """

    traces: list[Trace]
    _responses: list[ApiResponse] | None = attrs.field(alias="responses")
    retryable: list[bool]
    error: Exception | None = None
    # With _responses None: the HTTP status and the results by trace id.
    _answer: tuple[int, dict[str, tuple[bool, str]]] | None = None

    @classmethod
    def answered(
        cls, traces: list[Trace], status: int, results: dict[str, tuple[bool, str]]
    ) -> Outcome:
        """The outcome of a 2xx answer: each trace accepted unless its result says not."""
        return cls(traces, None, [False] * len(traces), None, (status, results))

    @property
    def responses(self) -> list[ApiResponse]:
        responses = self._responses
        if responses is None:
            assert self._answer is not None
            status, results = self._answer
            responses = self._responses = []
            for trace in self.traces:
                success, message = results.get(trace.id, _ACCEPTED)
                responses.append(ApiResponse(trace.id, success, status, message or "ok"))
        return responses

    @classmethod
    def merge(cls, parts: Sequence[Outcome]) -> Outcome:
        traces: list[Trace] = []
        responses: list[ApiResponse] = []
        retryable: list[bool] = []
        error: Exception | None = None
        for part in parts:
            traces += part.traces
            responses += part.responses
            retryable += part.retryable
            error = part.error or error
        return cls(traces, responses, retryable, error)

    def delivered(self) -> list[Trace]:
        if self._responses is None and self._answer is not None:
            results = self._answer[1]
            if not results:
                return list(self.traces)
            return [t for t in self.traces if results.get(t.id, _ACCEPTED)[0]]
        return [t for t, r in zip(self.traces, self.responses, strict=True) if r.success]

    def rejected(self) -> list[tuple[Trace, ApiResponse]]:
        if self._responses is None and self._answer is not None:
            results = self._answer[1]
            if all(success for success, _ in results.values()):
                return []
        return [
            (t, r)
            for t, r, again in zip(self.traces, self.responses, self.retryable, strict=True)
            if not r.success and not again
        ]

    def unanswered(self) -> list[Trace]:
        return [t for t, again in zip(self.traces, self.retryable, strict=True) if again]


@attrs.define
class _Answer:
    status: int
    body: bytes


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


_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def _snippet(body: bytes) -> str:
    """A short account of an error body for a message: a JSON ``message``, an HTML
    page's title (never its markup), or the start of plain text."""
    text = body[: _SNIPPET * 8].decode("utf-8", "replace").strip()
    if text.startswith("<"):
        found = _TITLE.search(text)
        text = html.unescape(found.group(1)) if found else ""
    elif text.startswith("{"):
        try:
            message = orjson.loads(body).get("message")
        except (orjson.JSONDecodeError, AttributeError):
            message = None
        if isinstance(message, str):
            text = message
    text = " ".join(text.split())
    if len(text) > _SNIPPET:
        text = text[: _SNIPPET - 3] + "..."
    return f": {text}" if text else ""


class Exporter:
    """Posts batches to ``{endpoint}/api/traces/batch``; bound to the loop it was made on."""

    def __init__(self, config: Config) -> None:
        self._config = config
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
        return f"<Exporter {self._config.batch_url} owns_session={self._owns_session}>"

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

    def _headers(self, key: str) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "User-Agent": USER_AGENT,
        }
        if self._config.publishable_key is not None:
            headers["Authorization"] = f"Bearer {self._config.publishable_key}"
        if self._config.compression == "gzip":
            headers["Content-Encoding"] = "gzip"
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

    async def _attempt(
        self, body: bytes, headers: dict[str, str], count: Counter | None
    ) -> _Answer:
        """One HTTP attempt; retryable failures raise ``SendFailure`` for backoff."""
        config = self._config
        async with self._semaphore:
            if self._limiter is not None:
                await self._limiter.acquire()
            # Checked last, right before the request: a send that was already waiting for
            # the semaphore or the limiter when a Retry-After arrived must honour it too.
            await self._wait_if_paused()
            try:
                async with self._get_session().post(
                    config.batch_url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=config.timeout),
                    allow_redirects=False,
                ) as response:
                    payload = await response.read()
                    status = response.status
                    retry_after_header = response.headers.get("Retry-After")
            except TimeoutError as exc:
                raise SendFailure(f"no answer within {config.timeout}s") from exc
            except aiohttp.ClientError as exc:
                raise SendFailure(f"{type(exc).__name__}: {exc}") from exc
        if status in RETRYABLE:
            retry_after = parse_retry_after(retry_after_header)
            if retry_after is not None:
                retry_after = min(retry_after, config.retry_backoff_max)
                self._pause(retry_after)
            raise SendFailure(
                f"HTTP {status}{_snippet(payload)}", status=status, retry_after=retry_after
            )
        return _Answer(status, payload)

    async def deliver(self, traces: Sequence[Trace], count: Counter | None = None) -> Outcome:
        """Send one batch (with retries, splitting on 413) and say what became of each trace.

        Never raises for delivery problems; only cancellation propagates.
        """
        traces = list(traces)
        body = encode_batch(traces, utcnow())
        if body is not None:
            return await self._deliver_encoded(traces, None, count, body)
        parts: list[bytes] = []
        sendable: list[Trace] = []
        broken: list[tuple[Trace, str]] = []
        for trace in traces:
            try:
                parts.append(encode_trace(trace))
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
        return Outcome.merge([failed] if outcome is None else [outcome, failed])

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
            body = encode_body(parts, utcnow())
        raw = body
        if self._config.compression == "gzip":
            body = gzip_body(body)
        if count is not None:
            count(batches=1)
        try:
            answer: _Answer = await self._post(body, self._headers(str(uuid.uuid4())), count=count)
        except SendFailure as exc:
            if parts is None:  # requeued next: keep each trace's bytes, as encode_trace does
                cache_parts(traces, raw)
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
                parts = cache_parts(traces, raw)
            return Outcome.merge(
                await asyncio.gather(
                    self._deliver_encoded(traces[:half], parts[:half], count),
                    self._deliver_encoded(traces[half:], parts[half:], count),
                )
            )
        return self._read_answer(traces, answer, self._config.batch_url)

    @staticmethod
    def _read_answer(traces: list[Trace], answer: _Answer, url: str) -> Outcome:
        status = answer.status
        if 200 <= status < 300:
            return Outcome.answered(traces, status, parse_results(answer.body) or {})
        if status == 413:
            message = "HTTP 413: the trace alone is larger than the collector accepts"
        else:
            message = f"HTTP {status}{_snippet(answer.body)}"
            if status in (404, 405):
                message += f" (POST {url}: is the endpoint, path prefix included, right?)"
        responses = [ApiResponse(t.id, False, status, message) for t in traces]
        return Outcome(traces, responses, [False] * len(traces))


def disabled_result(traces: Sequence[Trace]) -> BatchResult:
    """What ``send_batch()`` returns with ``enabled=False``: nothing sent, all failed."""
    message = "tracing is disabled (enabled=False); nothing was sent"
    results = [ApiResponse(t.id, False, None, message) for t in traces]
    return BatchResult(len(results), 0, len(results), results, [message] * len(results))


def batch_result(outcome: Outcome) -> BatchResult:
    """The ``BatchResult`` of a ``send_batch()``; ``BatchError`` when nothing got an answer."""
    results = outcome.responses
    errors = [f"{r.id}: {r.message}" for r in results if not r.success]
    if results and all(outcome.retryable):
        raise BatchError(
            f"none of {len(results)} trace(s) could be delivered: {outcome.error}",
            total=len(results),
            failed=len(results),
            errors=errors,
        ) from outcome.error
    successful = sum(r.success for r in results)
    return BatchResult(len(results), successful, len(results) - successful, results, errors)
