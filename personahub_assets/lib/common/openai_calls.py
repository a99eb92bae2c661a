"""Calls to OpenAI-compatible servers through the official ``openai`` client.

The client's own retries are off (``max_retries=0``): every failed attempt, 429s included,
comes back here, where one policy (:mod:`personahub_assets.lib.common.retry`) decides whether
and when to try again. Around it:

* :class:`RateLimiter`: requests- and tokens-per-minute caps over a sliding window;
* :class:`AdaptiveLimit`: how many requests may be in flight, additive increase on success and
  multiplicative decrease on a 429 (AIMD), between 1 and the configured maximum;
* :class:`ReplicaPool`: several base URLs (replicas of one model server); each attempt goes to
  the live replica with the fewest requests in flight, and a replica that refuses connections
  is dropped while others remain, its requests going on to the others.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai

from personahub_assets.lib.common.retry import RETRY_STATUS, RetryPolicy

T = TypeVar("T")


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits over a sliding 60 s window."""

    def __init__(self, rpm: int = 0, tpm: int = 0, window_s: float = 60.0):
        self.rpm, self.tpm, self.window_s = rpm, tpm, window_s
        self._events: deque[tuple[float, int]] = deque()
        self._lock: asyncio.Lock | None = None

    async def acquire(self, tokens: int) -> None:
        """Wait until one more request of ``tokens`` tokens fits in the window."""
        if not self.rpm and not self.tpm:
            return
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._events and now - self._events[0][0] >= self.window_s:
                    self._events.popleft()
                used = sum(t for _, t in self._events)
                fits_rpm = not self.rpm or len(self._events) < self.rpm
                fits_tpm = not self.tpm or used + tokens <= self.tpm or not self._events
                if fits_rpm and fits_tpm:
                    self._events.append((now, tokens))
                    return
                await asyncio.sleep(self.window_s - (now - self._events[0][0]) + 0.001)


class AdaptiveLimit:
    """Concurrency that adapts to the server: AIMD, as TCP does for its window.

    At most ``int(limit)`` requests are in flight. Each success adds ``1 / limit`` (about one
    per round of requests); a 429 multiplies the limit by ``decrease``, once per round: 429s
    of requests that started before the last decrease do not cut it again.

    Create one per event loop (the state that must outlive a loop is ``limit``).
    """

    def __init__(self, max_limit: int, limit: float | None = None, decrease: float = 0.5):
        if max_limit < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.max_limit = max_limit
        self.limit = float(min(limit or max_limit, max_limit))
        self.lowest = self.limit
        self.decrease = decrease
        self.decreases = 0
        self.in_flight = 0
        self._epoch = 0
        self._cond = asyncio.Condition()

    async def acquire(self) -> int:
        """Wait for a free slot; returns the epoch the request starts in."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1
            return self._epoch

    async def release(self, epoch: int, overloaded: bool, succeeded: bool) -> None:
        """Free the slot and adapt: ``overloaded`` means the server answered 429."""
        async with self._cond:
            self.in_flight -= 1
            if overloaded and epoch == self._epoch:
                self.limit = max(1.0, self.limit * self.decrease)
                self.lowest = min(self.lowest, self.limit)
                self.decreases += 1
                self._epoch += 1
            elif succeeded:
                self.limit = min(float(self.max_limit), self.limit + 1.0 / self.limit)
            self._cond.notify_all()


class NoReplicaLeft(RuntimeError):
    """Every replica of the pool refused connections."""


@dataclass
class Replica:
    """One base URL of the pool and its client."""

    base_url: str
    client: Any
    outstanding: int = 0
    sent: int = 0
    alive: bool = True
    last_error: str = ""


@dataclass
class ReplicaPool:
    """Replicas of one model server; the least busy live one gets the next attempt."""

    replicas: list[Replica]
    dropped: list[str] = field(default_factory=list)

    @classmethod
    def connect(cls, base_urls: Sequence[str], api_key: str, timeout_s: float) -> ReplicaPool:
        """Async clients for ``base_urls`` (open them inside the event loop that uses them)."""
        return cls([Replica(url, make_async_client(url, api_key, timeout_s))
                    for url in base_urls])

    def live(self) -> list[Replica]:
        """The replicas still in use."""
        return [r for r in self.replicas if r.alive]

    def pick(self) -> Replica:
        """The live replica with the fewest requests in flight (the first one on ties)."""
        live = self.live()
        if not live:
            raise NoReplicaLeft("; ".join(f"{r.base_url}: {r.last_error}" for r in self.replicas))
        return min(live, key=lambda r: r.outstanding)

    def drop(self, replica: Replica) -> bool:
        """Stop using ``replica`` unless it is the last live one.

        Returns True when the attempt can move on to another live replica (also when a
        concurrent request dropped this one first).
        """
        if replica.alive:
            if len(self.live()) == 1:
                return False
            replica.alive = False
            self.dropped.append(replica.base_url)
        return bool(self.live())

    async def close(self) -> None:
        """Close every client."""
        for replica in self.replicas:
            await replica.client.close()


def make_async_client(base_url: str, api_key: str, timeout_s: float) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` client whose own retries are off.

    Without a key the client gets a placeholder (so it never reads ``OPENAI_API_KEY`` from the
    environment); :func:`request_headers` then keeps it off the wire.
    """
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "no-key", timeout=timeout_s,
                              max_retries=0)


def request_headers(api_key: str) -> dict[str, Any]:
    """Per-request headers: none with a key; without one, no ``Authorization`` header at all
    (local servers need none, and a placeholder key must not be sent)."""
    return {} if api_key else {"Authorization": openai.Omit()}


class CallFailed(RuntimeError):
    """A call failed for good; the message says why (never the key)."""

    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


@dataclass
class CallStats:
    """Counters a caller can show: attempts sent and 429s seen."""

    attempts: int = 0
    rate_limited: int = 0


async def call_with_retry(
    pool: ReplicaPool,
    send: Callable[[Any], Awaitable[T]],
    retry: RetryPolicy,
    stats: CallStats,
    limit: AdaptiveLimit | None = None,
    before_attempt: Callable[[], Awaitable[None]] | None = None,
) -> tuple[T, int]:
    """``send(client)`` on the pool until it succeeds or the policy gives up.

    Returns the result and the number of retries it took. 429, 5xx, timeouts and dropped
    connections are retried (``Retry-After`` wins over the backoff); other statuses are not.
    A replica that refuses a connection is dropped while others are alive, and the attempt
    moves to another replica without using up a retry.

    Raises:
        CallFailed: With the last error, when no attempt succeeded.
    """
    attempt = 0
    while True:
        if before_attempt is not None:
            await before_attempt()
        epoch = await limit.acquire() if limit is not None else 0
        try:
            replica = pool.pick()  # after the slot, so that in-flight counts are current
        except NoReplicaLeft as exc:
            if limit is not None:
                await limit.release(epoch, overloaded=False, succeeded=False)
            raise CallFailed(f"no replica left: {exc}", attempt) from None
        replica.outstanding += 1
        replica.sent += 1
        stats.attempts += 1
        overloaded = succeeded = False
        retry_after: str | None = None
        try:
            result = await send(replica.client)
            succeeded = True
            return result, attempt
        except openai.APIStatusError as exc:
            error = f"HTTP {exc.status_code}: {_body_text(exc)[:200]}"
            overloaded = exc.status_code == 429
            stats.rate_limited += overloaded
            if exc.status_code not in RETRY_STATUS:
                raise CallFailed(error, attempt) from None
            retry_after = exc.response.headers.get("retry-after")
        except openai.APITimeoutError as exc:
            error = f"timeout: {exc}"
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            error = f"connection failed: {type(cause).__name__}: {cause}"
            replica.last_error = error
            if pool.drop(replica):
                continue  # the attempt goes to another replica, without a retry used
        except (ValueError, openai.APIResponseValidationError) as exc:
            error = f"malformed response: {type(exc).__name__}: {exc}"
        finally:
            replica.outstanding -= 1
            if limit is not None:
                await limit.release(epoch, overloaded, succeeded)
        if attempt >= retry.max_retries:
            raise CallFailed(error, attempt)
        await asyncio.sleep(retry.delay(attempt, retry_after))
        attempt += 1


def _body_text(exc: openai.APIStatusError) -> str:
    try:
        return exc.response.text
    except Exception:  # noqa: BLE001 - a body that cannot be read is not worth a crash
        return exc.message
