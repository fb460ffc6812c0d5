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

A worker that dies holding leases would shrink the endpoint's limit for good, so
leases are reclaimed two ways: when Ray reruns the lost shard, its new attempt's
first request hands back every lease of the earlier attempts of that shard (they
cannot be in use: Ray reruns a task only once its worker is gone); and a lease held
longer than the call timeout plus a margin expires, for a shard that is never rerun.
"""

from __future__ import annotations

import asyncio
import itertools
import time
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
        """
        shard, _, attempt = holder.rpartition("/")
        async with self._changed:
            self._supersede(shard, attempt)
            while True:
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

    Args:
        actors: The lease actor of each endpoint, by endpoint; an endpoint without one
            falls back to this event loop's semaphore (a per-process limit).
        holder: ``SHARD/ATTEMPT`` of the shard attempt this limiter serves.
    """

    def __init__(self, actors: Mapping[str, Any], holder: str) -> None:
        self._actors = dict(actors)
        self._holder = holder

    @asynccontextmanager
    async def slot(self, name: str, limit: int) -> AsyncIterator[None]:
        """Hold a lease of endpoint ``name`` while the context is open."""
        actor = self._actors.get(name)
        if actor is None:
            async with concurrency(name, limit):
                yield
            return
        lease = await actor.acquire.remote(self._holder)
        try:
            yield
        finally:
            # Not awaited: the next call need not wait for the actor's answer.
            actor.release.remote(lease)
