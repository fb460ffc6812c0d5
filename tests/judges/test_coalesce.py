"""The same request asked twice while the first is in flight goes to the judge once.

Against the real OpenAI-protocol test server, which counts what it receives.
"""

from __future__ import annotations

import asyncio

import pytest

from heldout._errors import JudgeRefused
from heldout.config import JudgeDefaults, Settings
from heldout.judges import JudgeClient, JudgeRequest, MemoryCache, Message, make_judge
from tests.support.openai_server import Fault, OpenAIServer

SETTINGS = Settings(
    judge=JudgeDefaults(timeout_s=5.0, max_retries=2, backoff_base_s=0.01, backoff_max_s=0.05)
)


def ask(i: int = 0) -> JudgeRequest:
    question = Message(role="user", content=f"Is answer {i} helpful?")
    return JudgeRequest(messages=(question,), mode="choice", choices=("Yes", "No"))


def client_of(server: OpenAIServer, cache: MemoryCache | None) -> JudgeClient:
    judge = make_judge(f"openai:test-model@{server.base_url}", SETTINGS)
    return JudgeClient(judge, settings=SETTINGS, cache=cache)


async def test_identical_requests_in_flight_make_one_call() -> None:
    with OpenAIServer(latency_ms=200) as server:
        async with client_of(server, MemoryCache()) as client:
            replies = await asyncio.gather(*(client.call(ask()) for _ in range(5)))
            other = await client.call(ask(1))
        assert server.requests == 2
        assert [reply.cached for reply in replies].count(False) == 1
        assert all(reply.choice_probs == replies[0].choice_probs for reply in replies)
        assert replies[0].choice_probs is not None
        assert not other.cached
        assert client.stats.calls == 2
        assert client.stats.cache_hits == 4


async def test_two_clients_on_one_loop_share_the_call() -> None:
    # E.g. the dashboard's scheduled evaluation and its cohort classifier.
    with OpenAIServer(latency_ms=200) as server:
        async with (
            client_of(server, MemoryCache()) as first,
            client_of(server, MemoryCache()) as second,
        ):
            a, b = await asyncio.gather(first.call(ask()), second.call(ask()))
        assert server.requests == 1
        assert sorted([a.cached, b.cached]) == [False, True]


async def test_a_failed_call_fails_its_followers_without_more_calls() -> None:
    with OpenAIServer(latency_ms=200) as server:
        server.fail_next("400")
        async with client_of(server, MemoryCache()) as client:
            results = await asyncio.gather(
                *(client.call(ask()) for _ in range(3)), return_exceptions=True
            )
        assert server.requests == 1
        assert all(isinstance(result, JudgeRefused) for result in results)
        assert client.stats.calls == 1
        # Nothing is cached from a failure: the next ask calls again.
        async with client_of(server, MemoryCache()) as client:
            assert not (await client.call(ask())).cached
        assert server.requests == 2


async def test_a_retried_call_is_still_shared() -> None:
    with OpenAIServer(latency_ms=100) as server:
        server.fail_next("500")
        async with client_of(server, MemoryCache()) as client:
            replies = await asyncio.gather(client.call(ask()), client.call(ask()))
        assert server.requests == 2  # the failed attempt and its retry, nothing more
        assert sorted(reply.cached for reply in replies) == [False, True]


async def test_a_follower_calls_itself_when_the_first_caller_is_cancelled() -> None:
    with OpenAIServer() as server:
        server.fail_next(Fault("slow", delay_s=1.0))
        async with client_of(server, MemoryCache()) as client:
            leader = asyncio.create_task(client.call(ask()))
            for _ in range(500):  # until the first call is at the server, slowed down
                if server.requests:
                    break
                await asyncio.sleep(0.01)
            follower = asyncio.create_task(client.call(ask()))
            await asyncio.sleep(0.1)  # the follower waits for the first call
            assert not follower.done()
            leader.cancel()
            reply = await asyncio.wait_for(follower, timeout=5)
            with pytest.raises(asyncio.CancelledError):
                await leader
        assert not reply.cached
        assert server.requests == 2


async def test_without_a_cache_every_call_goes_out() -> None:
    with OpenAIServer(latency_ms=100) as server:
        async with client_of(server, None) as client:
            await asyncio.gather(client.call(ask()), client.call(ask()))
        assert server.requests == 2
