"""The judge client: the one place with caching, concurrency limits, timeouts and retries.

A :class:`~heldout.judges.Judge` makes one attempt per call. :class:`JudgeClient`
wraps it::

    cache hit? ──yes──> reply (cached=True, no call)
        │no
        ▼
    the same request in flight on this event loop? ──yes──> wait for it (cached=True)
        │no
        ▼
    ┌─> acquire the endpoint's semaphore ─> generate(timeout) ─> release
    │       │ JudgeError, retryable, attempts left
    │       ▼
    └── sleep (full-jitter backoff, at least Retry-After), semaphore NOT held
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self, TypeVar

from heldout._errors import ConfigError, JudgeError, JudgeRateLimited, JudgeTimeout
from heldout.config import Settings
from heldout.judges._base import Judge
from heldout.judges._cache import ResponseCache
from heldout.judges._types import JudgeReply, JudgeRequest

_T = TypeVar("_T", int, float)
_V = TypeVar("_V")

# Tables kept per event loop: semaphores by name, and requests in flight by cache key
# (a second caller of the same request waits for the first one's reply instead of
# calling the judge again). Plain dicts, not WeakKeyDictionaries: a semaphore that ever
# waited holds its loop, so weak keys would never expire. Entries of closed loops are
# dropped whenever a new loop shows up.
_semaphores: dict[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = {}
_flights: dict[asyncio.AbstractEventLoop, dict[str, asyncio.Future[JudgeReply]]] = {}


def _this_loops(tables: dict[asyncio.AbstractEventLoop, dict[str, _V]]) -> dict[str, _V]:
    loop = asyncio.get_running_loop()
    table = tables.get(loop)
    if table is None:
        for old in [old for old in tables if old.is_closed()]:
            del tables[old]
        table = tables[loop] = {}
    return table


class _LeaderGone(Exception):
    """The caller whose request a follower waited for was cancelled before a reply."""


def _semaphore(name: str, limit: int) -> asyncio.Semaphore:
    by_name = _this_loops(_semaphores)
    semaphore = by_name.get(name)
    if semaphore is None:
        semaphore = by_name[name] = asyncio.Semaphore(limit)
    return semaphore


@asynccontextmanager
async def concurrency(name: str, limit: int) -> AsyncIterator[None]:
    """Hold one of ``limit`` slots named ``name`` on the running event loop.

    Every caller that uses the same name on the same loop shares the slots; the first
    caller to use a name sets its limit.

    Args:
        name: The limit's name, e.g. an endpoint's base URL.
        limit: How many holders at once.
    """
    async with _semaphore(name, limit):
        yield


class Limiter(Protocol):
    """Hands out slots of named concurrency limits.

    The default is :func:`concurrency`, this event loop's semaphores. The Ray backend
    gives its shards one whose slots are leases from an actor per endpoint, so a limit
    holds across every process of the cluster.
    """

    def slot(self, name: str, limit: int) -> AbstractAsyncContextManager[None]:
        """Hold one of ``limit`` slots named ``name`` while the context is open."""
        ...


@dataclass
class ClientStats:
    """What a :class:`JudgeClient` did. ``calls == replies + errors`` always holds.

    Attributes:
        calls: Attempts sent to the judge (retries included, cache hits not).
        replies: Attempts that came back with a reply.
        cache_hits: Requests answered from the cache, or by the reply to the same
            request already in flight, with no call.
        retries: Attempts after the first for the same request.
        errors: Attempts that failed.
        errors_by_kind: Failed attempts by :attr:`JudgeError.kind`.
        gave_up: Requests that raised to the caller after their last attempt.
        prompt_tokens: Prompt tokens of all replies (cache hits not counted).
        completion_tokens: Completion tokens of all replies (cache hits not counted).
        cost_usd: Cost of the replies whose model price is known.
        unpriced: Replies whose cost is unknown (not in ``cost_usd``).
    """

    calls: int = 0
    replies: int = 0
    cache_hits: int = 0
    retries: int = 0
    errors: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    gave_up: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0

    def add(self, other: ClientStats) -> None:
        """Add ``other``'s counts to these (replicas of one model, shards of one run)."""
        for name, value in vars(other).items():
            if isinstance(value, dict):
                mine = getattr(self, name)
                for kind, n in value.items():
                    mine[kind] = mine.get(kind, 0) + n
            else:
                setattr(self, name, getattr(self, name) + value)


class JudgeClient:
    """Calls a judge with caching, a shared per-endpoint concurrency limit, timeouts and
    retries.

    Each knob resolves as: explicit argument, then ``settings.endpoints[judge.endpoint]``,
    then ``settings.judge`` (concurrency: then ``judge.default_concurrency``).

    Args:
        judge: The judge to call.
        settings: Retry, timeout and per-endpoint settings; defaults when None.
        cache: Where successful replies are kept and looked up; no caching when None.
        concurrency: Calls in flight at once for the judge's endpoint, shared with every
            client of the same endpoint on the same event loop (the first one sets it).
        timeout_s: Seconds one attempt may take.
        max_retries: Attempts after the first on retryable errors.
        rng: The source of backoff jitter (seed it for reproducible waits).
        limiter: Where the endpoint's slots come from (default: this event loop's
            semaphores, see :func:`concurrency`).
    """

    def __init__(
        self,
        judge: Judge,
        *,
        settings: Settings | None = None,
        cache: ResponseCache | None = None,
        concurrency: int | None = None,
        timeout_s: float | None = None,
        max_retries: int | None = None,
        rng: random.Random | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        settings = settings or Settings()
        limits = settings.endpoint(judge.endpoint)
        self.judge = judge
        spec = getattr(judge, "spec", None)
        self.spec: str = str(spec) if spec is not None else f"{judge.provider}:{judge.model}"
        self.stats = ClientStats()
        self.cache = cache
        self.concurrency = _first(
            concurrency, limits.concurrency, default=judge.default_concurrency
        )
        self.timeout_s = _first(timeout_s, limits.timeout_s, default=settings.judge.timeout_s)
        self.max_retries = _first(
            max_retries, limits.max_retries, default=settings.judge.max_retries
        )
        self._backoff_base = settings.judge.backoff_base_s
        self._backoff_max = settings.judge.backoff_max_s
        self._rng = rng or random.Random()
        self._limiter = limiter
        self._endpoint = judge.endpoint
        self._provider = judge.provider
        self._model = judge.model
        if self.concurrency < 1 or self.timeout_s <= 0 or self.max_retries < 0:
            raise ConfigError(
                f"Judge {self.spec}: concurrency must be >= 1, timeout_s > 0 and "
                f"max_retries >= 0 (got {self.concurrency}, {self.timeout_s}, {self.max_retries})"
            )

    async def call(self, request: JudgeRequest) -> JudgeReply:
        """Answer ``request``: from the cache, or from the judge with retries.

        With a cache, a request that is already in flight on this event loop (from this
        client or another with the same cache key) is not sent again: this call waits
        for that reply, or raises that call's error.

        Raises:
            JudgeError: The subclass of the last attempt's failure, once retries are
                spent or at once when it is not retryable (refusals, parse errors).
        """
        if self.cache is None:
            return await self._call(request, None)
        key = request.cache_key(provider=self._provider, model=self._model)
        flights = _this_loops(_flights)
        while True:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.cache_hits += 1
                return hit.model_copy(update={"cached": True, "latency_s": 0.0})
            leader = flights.get(key)
            if leader is None:
                break
            try:
                reply = await asyncio.shield(leader)
            except _LeaderGone:
                continue  # the other caller was cancelled: look again, then call
            self.stats.cache_hits += 1
            return reply.model_copy(update={"cached": True, "latency_s": 0.0})
        flight = flights[key] = asyncio.get_running_loop().create_future()
        try:
            reply = await self._call(request, key)
        except BaseException as exc:
            gone = exc if isinstance(exc, JudgeError) else _LeaderGone()
            flight.set_exception(gone)
            flight.exception()  # retrieved: with no follower, asyncio must not log it
            raise
        else:
            flight.set_result(reply)
            return reply
        finally:
            if flights.get(key) is flight:
                del flights[key]

    async def _call(self, request: JudgeRequest, key: str | None) -> JudgeReply:
        attempt = 0
        while True:
            try:
                reply = await self._attempt(request)
            except JudgeError as err:
                self._count_error(err)
                if not err.retryable or attempt >= self.max_retries:
                    self.stats.gave_up += 1
                    if attempt:
                        err.args = (f"{err} (gave up after {attempt + 1} attempts)",)
                    raise
                await asyncio.sleep(self._backoff(attempt, err))
                attempt += 1
                self.stats.retries += 1
                continue
            self._count_reply(reply)
            if key is not None and self.cache is not None:
                self.cache.put(key, reply)
            return reply

    async def aclose(self) -> None:
        """Close the judge (its connections or model)."""
        await self.judge.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"JudgeClient({self.spec})"

    async def _attempt(self, request: JudgeRequest) -> JudgeReply:
        # The slot is held only while the call is in flight, never during backoff.
        slot = (
            _semaphore(self._endpoint, self.concurrency)
            if self._limiter is None
            else self._limiter.slot(self._endpoint, self.concurrency)
        )
        async with slot:
            self.stats.calls += 1
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await self.judge.generate(request, timeout=self.timeout_s)
            except TimeoutError as exc:
                raise JudgeTimeout(
                    f"model {self._model!r}: no reply within {self.timeout_s:g}s",
                    endpoint=self._endpoint,
                ) from exc

    def _backoff(self, attempt: int, err: JudgeError) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**attempt)], but at least the
        endpoint's Retry-After (itself capped at the maximum backoff)."""
        delay = self._rng.uniform(0.0, min(self._backoff_max, self._backoff_base * 2**attempt))
        if isinstance(err, JudgeRateLimited) and err.retry_after:
            delay = max(delay, min(err.retry_after, self._backoff_max))
        return delay

    def _count_error(self, err: JudgeError) -> None:
        stats = self.stats
        stats.errors += 1
        kind = err.kind
        stats.errors_by_kind[kind] = stats.errors_by_kind.get(kind, 0) + 1

    def _count_reply(self, reply: JudgeReply) -> None:
        stats = self.stats
        stats.replies += 1
        stats.prompt_tokens += reply.usage.prompt_tokens
        stats.completion_tokens += reply.usage.completion_tokens
        if reply.cost_usd is None:
            stats.unpriced += 1
        else:
            stats.cost_usd += reply.cost_usd


def _first(*values: _T | None, default: _T) -> _T:
    """The first value that is not None (0 is a value: ``max_retries=0`` means none)."""
    for value in values:
        if value is not None:
            return value
    return default
