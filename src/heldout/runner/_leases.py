"""Per-endpoint concurrency limits that hold across a Ray cluster.

Within one process a judge endpoint's limit is an asyncio semaphore. Shards of a run
on the Ray backend run in many processes on many nodes, so each endpoint gets one
:class:`EndpointLeases` actor instead, created by the driver. A call in any shard
first takes a lease from it and gives the lease back when the call ends::

    shard (worker A) ─ acquire ─┐                 ┌─ acquire ─ shard (worker B)
                                ▼                 ▼
                 EndpointLeases(limit=16) of http://judge-1:8000/v1
                                │ at most 16 leases out at once
                                ▼
                     the endpoint (a vLLM replica)

A shard gives its leases back when it ends. A worker that dies holding leases would
shrink the endpoint's limit for good, so leases are also reclaimed two ways: when Ray
reruns the lost shard, its new attempt's first request hands back every lease of the
earlier attempts of that shard (they cannot be in use: Ray reruns a task only once its
worker is gone); and a lease held longer than the call timeout plus a margin expires,
for a shard that is never rerun.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from heldout.judges._client import concurrency


@dataclass(frozen=True)
class _Lease:
    shard: str
    attempt: str
    expires: float


@dataclass(frozen=True)
class LeaseStats:
    """What an endpoint's lease actor saw.

    Attributes:
        limit: Leases out at once, at most.
        held: Leases out now.
        max_held: The most leases out at once so far.
        granted: Leases handed out so far.
        reclaimed: Leases taken back from lost attempts or expired.
    """

    limit: int
    held: int
    max_held: int
    granted: int
    reclaimed: int


class EndpointLeases:
    """Hands out at most ``limit`` leases at once for one endpoint (a Ray async actor).

    Args:
        endpoint: The endpoint's base URL (for stats and errors).
        limit: Calls in flight at once across the cluster.
        ttl_s: How long a lease may be held before it is taken back: longer than any
            call may take (the call timeout plus a margin).
    """

    def __init__(self, endpoint: str, limit: int, ttl_s: float) -> None:
        self.endpoint = endpoint
        self._limit = limit
        self._ttl_s = ttl_s
        self._held: dict[str, _Lease] = {}
        self._attempt_of: dict[str, str] = {}
        self._withdrawn: set[str] = set()
        self._changed = asyncio.Condition()
        self._ids = itertools.count()
        self._max_held = 0
        self._granted = 0
        self._reclaimed = 0

    async def acquire(self, holder: str) -> str:
        """Wait for a free slot and return its lease id.

        Args:
            holder: ``SHARD/ATTEMPT``: the shard asking and its attempt's id; a new
                attempt of a shard reclaims the leases of its earlier attempts.

        Returns:
            The lease id; empty when the holder withdrew while it waited.
        """
        shard, _, attempt = holder.rpartition("/")
        async with self._changed:
            self._supersede(shard, attempt)
            while True:
                if holder in self._withdrawn:
                    return ""
                wait = self._expire()
                if len(self._held) < self._limit:
                    break
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=wait)
            lease = f"{holder}#{next(self._ids)}"
            self._held[lease] = _Lease(shard, attempt, time.monotonic() + self._ttl_s)
            self._granted += 1
            self._max_held = max(self._max_held, len(self._held))
            return lease

    async def release(self, lease: str) -> None:
        """Give ``lease`` back; an unknown (reclaimed) lease is ignored."""
        async with self._changed:
            if self._held.pop(lease, None) is not None:
                self._changed.notify()

    async def withdraw(self, holder: str) -> None:
        """The attempt ``holder`` is over: free its leases, and answer its waiting
        requests with no lease."""
        shard, _, attempt = holder.rpartition("/")
        async with self._changed:
            self._withdrawn.add(holder)
            mine = [k for k, v in self._held.items() if (v.shard, v.attempt) == (shard, attempt)]
            for lease in mine:
                del self._held[lease]
            self._changed.notify_all()

    async def stats(self) -> LeaseStats:
        """The limit, the leases out and what was granted and reclaimed."""
        async with self._changed:
            self._expire()
            return LeaseStats(
                self._limit, len(self._held), self._max_held, self._granted, self._reclaimed
            )

    def _supersede(self, shard: str, attempt: str) -> None:
        if self._attempt_of.get(shard) == attempt:
            return
        self._attempt_of[shard] = attempt
        stale = [k for k, v in self._held.items() if v.shard == shard and v.attempt != attempt]
        self._drop(stale)

    def _expire(self) -> float:
        """Drop expired leases; seconds until the next one expires (at least 10 ms)."""
        now = time.monotonic()
        self._drop([k for k, v in self._held.items() if v.expires <= now])
        soonest = min((v.expires for v in self._held.values()), default=now + self._ttl_s)
        return max(0.01, soonest - now)

    def _drop(self, leases: list[str]) -> None:
        for lease in leases:
            del self._held[lease]
        if leases:
            self._reclaimed += len(leases)
            self._changed.notify(len(leases))


class RayLimiter:
    """A :class:`~heldout.judges.Limiter` whose slots are leases from endpoint actors.

    A lease costs a round trip to its endpoint's actor, and one actor serves every
    process of the cluster. So a process keeps the leases it has while it has calls
    waiting: a finished call hands its lease straight to the next waiting call, for up
    to ``reuse_s`` after the actor granted it; a lease nobody waits for goes back after
    ``linger_s``. At most ``asking`` requests per endpoint wait at the actor at once.
    The actor still bounds the leases out across the cluster, and a lease is out no
    longer than ``reuse_s`` plus one call, well inside the actor's time to live.

    Args:
        actors: The lease actor of each endpoint, by endpoint; an endpoint without one
            falls back to this event loop's semaphore (a per-process limit).
        holder: ``SHARD/ATTEMPT`` of the shard attempt this limiter serves.
        reuse_s: How long after its grant a lease may serve further calls.
        linger_s: How long an unused lease waits for a call before it goes back.
        asking: Requests per endpoint waiting at the actor at once, at most.
    """

    def __init__(
        self,
        actors: Mapping[str, Any],
        holder: str,
        *,
        reuse_s: float = 5.0,
        linger_s: float = 0.02,
        asking: int = 4,
    ) -> None:
        self._actors = dict(actors)
        self._holder = holder
        self._options = (reuse_s, linger_s, asking)
        self._pools: dict[str, _Pool] = {}

    @property
    def acquired(self) -> int:
        """Leases taken from actors so far (the round trips paid for them)."""
        return sum(pool.acquired for pool in self._pools.values())

    @asynccontextmanager
    async def slot(self, name: str, limit: int) -> AsyncIterator[None]:
        """Hold a lease of endpoint ``name`` while the context is open."""
        actor = self._actors.get(name)
        if actor is None:
            async with concurrency(name, limit):
                yield
            return
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = _Pool(actor, self._holder, *self._options)
        held = await pool.take()
        try:
            yield
        finally:
            pool.give(held)

    async def aclose(self) -> None:
        """Give back every lease of this shard attempt and stop asking for more."""
        for pool in self._pools.values():
            await pool.close()


@dataclass(frozen=True)
class _Held:
    lease: str
    granted: float
    idle_since: float = 0.0


class _Pool:
    """One endpoint's leases in one process: idle ones, waiting calls, open requests."""

    def __init__(
        self, actor: Any, holder: str, reuse_s: float, linger_s: float, asking: int
    ) -> None:
        self._actor = actor
        self._holder = holder
        self._reuse_s = reuse_s
        self._linger_s = linger_s
        self._asking = asking
        self._idle: list[_Held] = []
        self._waiters: deque[asyncio.Future[_Held]] = deque()
        self._asks: set[asyncio.Task[None]] = set()
        self.acquired = 0

    async def take(self) -> _Held:
        now = time.monotonic()
        while self._idle:
            held = self._idle.pop()
            if now - held.granted < self._reuse_s:
                return held
            self._actor.release.remote(held.lease)
        waiter: asyncio.Future[_Held] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._ask_more()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give(waiter.result())  # handed a lease as it was cancelled
            raise
        finally:
            with suppress(ValueError):
                self._waiters.remove(waiter)

    def give(self, held: _Held) -> None:
        """A call is done with ``held``: the next waiting call gets it, unless it has
        served long enough."""
        if time.monotonic() - held.granted >= self._reuse_s:
            # Not awaited: the next call need not wait for the actor's answer.
            self._actor.release.remote(held.lease)
            self._ask_more()
            return
        self._hand(held)

    def _hand(self, held: _Held) -> None:
        now = time.monotonic()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(held)
                return
        self._idle.append(_Held(held.lease, held.granted, now))
        asyncio.get_running_loop().call_later(self._linger_s, self._flush)

    async def close(self) -> None:
        for ask in list(self._asks):
            ask.cancel()
        self._idle.clear()
        # Frees every lease of this attempt, granted or still on its way, at once.
        await self._actor.withdraw.remote(self._holder)

    def _ask_more(self) -> None:
        waiting = sum(not w.done() for w in self._waiters)
        while len(self._asks) < min(self._asking, waiting):
            ask = asyncio.get_running_loop().create_task(self._ask())
            self._asks.add(ask)
            ask.add_done_callback(self._asks.discard)

    async def _ask(self) -> None:
        lease = await self._actor.acquire.remote(self._holder)
        if not lease:  # withdrawn
            return
        self.acquired += 1
        self._hand(_Held(lease, time.monotonic()))  # a new lease serves once, whatever reuse_s
        # This request is answered: no longer count it, or the last waiter may be left
        # with no request on its behalf.
        task = asyncio.current_task()
        if task is not None:
            self._asks.discard(task)
        self._ask_more()

    def _flush(self) -> None:
        now = time.monotonic()
        stale = [h for h in self._idle if now - h.idle_since >= self._linger_s * 0.9]
        for held in stale:
            self._idle.remove(held)
            self._actor.release.remote(held.lease)
