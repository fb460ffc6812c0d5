"""Replicas of one model behind several endpoints: calls go to the least busy."""

from __future__ import annotations

import asyncio

import pytest

from heldout import ConfigError, Settings
from heldout.config import EndpointSettings
from heldout.judges import JudgeClient, JudgeRequest, MemoryCache, Message, ReplicaPool, make_judge
from tests.support.openai_server import OpenAIServer


def client(server: OpenAIServer, model: str = "policy", *, cache: MemoryCache | None = None,
           concurrency: int = 4) -> JudgeClient:  # fmt: skip
    settings = Settings(
        openai_api_key="sk-test",
        endpoints={server.base_url: EndpointSettings(concurrency=concurrency)},
    )
    judge = make_judge(f"openai:{model}@{server.base_url}", settings)
    return JudgeClient(judge, settings=settings, cache=cache)


def request(i: int) -> JudgeRequest:
    return JudgeRequest(messages=(Message(role="user", content=f"prompt {i}"),), mode="text")


async def test_equal_replicas_share_the_work_evenly() -> None:
    with OpenAIServer(latency_ms=20) as a, OpenAIServer(latency_ms=20) as b:
        pool = ReplicaPool([client(a), client(b)])
        await asyncio.gather(*(pool.call(request(i)) for i in range(40)))
        await pool.aclose()
        assert (a.requests, b.requests) == (20, 20)
        assert pool.stats.calls == pool.stats.replies == 40


async def test_a_slow_replica_gets_less_work() -> None:
    with OpenAIServer(latency_ms=5) as fast, OpenAIServer(latency_ms=100) as slow:
        pool = ReplicaPool([client(slow), client(fast)])
        limit = asyncio.Semaphore(4)

        async def one(i: int) -> None:
            async with limit:
                await pool.call(request(i))

        await asyncio.gather(*(one(i) for i in range(60)))
        await pool.aclose()
        assert fast.requests + slow.requests == 60
        assert fast.requests > 3 * slow.requests


async def test_an_output_one_replica_generated_is_not_generated_again_by_another() -> None:
    cache = MemoryCache()
    with OpenAIServer() as a, OpenAIServer() as b:
        pool = ReplicaPool([client(a, cache=cache), client(b, cache=cache)])
        first = await pool.call(request(1))
        again = await pool.call(request(1))  # round-robin: the other replica's turn
        await pool.aclose()
        assert a.requests + b.requests == 1
        assert again.cached
        assert again.text == first.text


def test_replicas_must_serve_one_model() -> None:
    with OpenAIServer() as a, OpenAIServer() as b:
        with pytest.raises(ConfigError, match="Replicas must serve one model"):
            ReplicaPool([client(a, "policy-a"), client(b, "policy-b")])
        with pytest.raises(ConfigError, match="at least one endpoint"):
            ReplicaPool([])
