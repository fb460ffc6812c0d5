"""The per-endpoint lease actor's logic, run as a plain object on one event loop (Ray
runs the same methods on the actor's loop): the limit, reclaiming the leases of a lost
shard attempt, and expiry."""

from __future__ import annotations

import asyncio

from heldout.runner._leases import EndpointLeases


async def test_no_more_than_the_limit_is_out_and_a_release_lets_the_next_in() -> None:
    leases = EndpointLeases("http://judge/v1", limit=2, ttl_s=60)
    first = await leases.acquire("run:0/a")
    await leases.acquire("run:1/b")
    third = asyncio.create_task(leases.acquire("run:2/c"))
    await asyncio.sleep(0.05)
    assert not third.done()
    await leases.release(first)
    await asyncio.wait_for(third, timeout=1)
    stats = await leases.stats()
    assert (stats.held, stats.max_held, stats.granted, stats.reclaimed) == (2, 2, 3, 0)


async def test_a_rerun_shard_reclaims_the_leases_of_its_lost_attempt() -> None:
    leases = EndpointLeases("http://judge/v1", limit=2, ttl_s=60)
    await leases.acquire("run:7/lost")
    await leases.acquire("run:7/lost")
    waiting = asyncio.create_task(leases.acquire("run:3/other"))
    await asyncio.sleep(0.05)
    assert not waiting.done(), "the lost attempt still holds both slots"
    # Ray reruns shard 7: its new attempt's first request frees the lost attempt's slots.
    await leases.acquire("run:7/rerun")
    await asyncio.wait_for(waiting, timeout=1)
    stats = await leases.stats()
    assert (stats.held, stats.reclaimed) == (2, 2)


async def test_a_lease_held_past_its_time_to_live_is_taken_back() -> None:
    leases = EndpointLeases("http://judge/v1", limit=1, ttl_s=0.2)
    await leases.acquire("run:0/gone")  # its holder never releases it
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(leases.acquire("run:1/next"), timeout=2)
    assert asyncio.get_running_loop().time() - started >= 0.15
    assert (await leases.stats()).reclaimed == 1


async def test_releasing_a_reclaimed_lease_changes_nothing() -> None:
    leases = EndpointLeases("http://judge/v1", limit=1, ttl_s=60)
    old = await leases.acquire("run:0/lost")
    await leases.acquire("run:0/rerun")
    await leases.release(old)  # the lost attempt's late release, if it ever came
    stats = await leases.stats()
    assert (stats.held, stats.granted, stats.reclaimed) == (1, 2, 1)
