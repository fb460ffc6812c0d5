"""JudgeClient against a real OpenAI-protocol server: retries, backoff, timeouts,
concurrency limits, caching and accounting."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator

import pytest

from heldout._errors import (
    JudgeRefused,
    JudgeTimeout,
    JudgeUnavailable,
)
from heldout.config import EndpointSettings, JudgeDefaults, Settings
from heldout.judges import (
    ClientStats,
    Judge,
    JudgeClient,
    JudgeReply,
    JudgeRequest,
    JudgeSpec,
    MemoryCache,
    Message,
    make_judge,
)
from heldout.judges._client import concurrency
from heldout.judges._openai import OpenAIJudge
from tests.support.openai_server import Fault, OpenAIServer

MAX_RETRIES = 3
SETTINGS = Settings(
    judge=JudgeDefaults(
        timeout_s=5.0, max_retries=MAX_RETRIES, backoff_base_s=0.01, backoff_max_s=2.0
    )
)


def ask(i: int = 0) -> JudgeRequest:
    question = Message(role="user", content=f"Is answer {i} helpful?")
    return JudgeRequest(messages=(question,), mode="choice", choices=("Yes", "No"))


@pytest.fixture
async def client(openai_server: OpenAIServer) -> AsyncIterator[JudgeClient]:
    judge = make_judge(f"openai:test-model@{openai_server.base_url}", SETTINGS)
    async with JudgeClient(judge, settings=SETTINGS, rng=random.Random(0)) as client:
        yield client


def gaps(server: OpenAIServer) -> list[float]:
    times = [record.time for record in server.log]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def assert_consistent(stats: ClientStats) -> None:
    assert stats.calls == stats.replies + stats.errors
    assert stats.errors == sum(stats.errors_by_kind.values())


async def test_429_honours_retry_after(client: JudgeClient, openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault("429", retry_after="0.3"))
    reply = await client.call(ask())
    assert reply.choice_probs is not None
    assert openai_server.requests == 2
    assert gaps(openai_server)[0] >= 0.3
    assert client.stats.retries == 1
    assert client.stats.errors_by_kind == {"rate_limited": 1}
    assert_consistent(client.stats)


async def test_retry_after_is_capped_at_backoff_max(openai_server: OpenAIServer) -> None:
    settings = Settings(judge=JudgeDefaults(backoff_base_s=0.01, backoff_max_s=0.2))
    judge = OpenAIJudge("test-model", base_url=openai_server.base_url)
    openai_server.fail_next(Fault("429", retry_after="30"))
    async with JudgeClient(judge, settings=settings) as client:
        await client.call(ask())
    assert 0.2 <= gaps(openai_server)[0] < 1.0


async def test_500_then_success(client: JudgeClient, openai_server: OpenAIServer) -> None:
    openai_server.fail_next("500", "500")
    reply = await client.call(ask())
    assert reply.choice_probs is not None
    assert openai_server.requests == 3
    assert client.stats.errors_by_kind == {"unavailable": 2}
    assert client.stats.retries == 2
    # Full-jitter backoff never waits longer than base * 2**attempt (plus overhead).
    assert all(gap < 0.01 * 2**i + 0.5 for i, gap in enumerate(gaps(openai_server)))


async def test_slow_reply_times_out_then_retries(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault("slow", delay_s=2.0))
    judge = OpenAIJudge("test-model", base_url=openai_server.base_url)
    start = time.monotonic()
    async with JudgeClient(judge, settings=SETTINGS, timeout_s=0.3) as client:
        reply = await client.call(ask())
    assert reply.choice_probs is not None
    assert time.monotonic() - start < 1.5
    assert openai_server.requests == 2
    assert client.stats.errors_by_kind == {"timeout": 1}


class _Sleeper(Judge):
    """A provider that ignores its timeout."""

    provider = "sleeper"

    @classmethod
    def from_spec(cls, spec: JudgeSpec, settings: Settings) -> _Sleeper:
        return cls()

    @property
    def model(self) -> str:
        return "forever"

    async def generate(self, request: JudgeRequest, *, timeout: float) -> JudgeReply:  # noqa: ASYNC109
        await asyncio.sleep(60)
        return JudgeReply(text="too late")


async def test_timeout_is_enforced_even_if_the_provider_ignores_it() -> None:
    client = JudgeClient(_Sleeper(), settings=SETTINGS, timeout_s=0.05, max_retries=1)
    start = time.monotonic()
    with pytest.raises(JudgeTimeout, match="after 2 attempts") as info:
        await client.call(ask())
    assert time.monotonic() - start < 1.0
    assert info.value.endpoint == "sleeper:forever"
    assert client.stats.calls == 2
    assert client.spec == "sleeper:forever"
    await client.aclose()


@pytest.mark.parametrize("fault", ["malformed", "cutoff", "500"])
async def test_retryable_faults_give_up_after_max_retries(
    client: JudgeClient, openai_server: OpenAIServer, fault: Fault
) -> None:
    openai_server.fail_next(*[fault] * (MAX_RETRIES + 1))
    with pytest.raises(JudgeUnavailable, match=f"after {MAX_RETRIES + 1} attempts"):
        await client.call(ask())
    assert openai_server.requests == MAX_RETRIES + 1
    assert client.stats.gave_up == 1
    assert client.stats.retries == MAX_RETRIES
    assert_consistent(client.stats)


@pytest.mark.parametrize("fault", ["400", "content_filter", "refusal"])
async def test_refusals_surface_at_once(
    client: JudgeClient, openai_server: OpenAIServer, fault: Fault
) -> None:
    openai_server.fail_next(fault)
    with pytest.raises(JudgeRefused) as info:
        await client.call(ask())
    assert "attempts" not in str(info.value)
    assert openai_server.requests == 1
    assert client.stats.errors_by_kind == {"refused": 1}


async def test_an_unreadable_reply_is_cached_and_not_retried(
    openai_server: OpenAIServer,
) -> None:
    openai_server.top_logprobs = None
    openai_server.responder = lambda body: "Unclear"
    cache = MemoryCache()
    judge = OpenAIJudge("test-model", base_url=openai_server.base_url)
    async with JudgeClient(judge, settings=SETTINGS, cache=cache) as client:
        first = await client.call(ask())
        again = await client.call(ask())
    assert (first.choice_probs, first.text) == (None, "Unclear")
    assert again.cached
    assert openai_server.requests == 1
    assert len(cache) == 1


async def test_failed_calls_are_not_cached(openai_server: OpenAIServer) -> None:
    cache = MemoryCache()
    judge = OpenAIJudge("test-model", base_url=openai_server.base_url)
    async with JudgeClient(judge, settings=SETTINGS, cache=cache) as client:
        openai_server.fail_next("400")
        with pytest.raises(JudgeRefused):
            await client.call(ask())
        assert len(cache) == 0
        await client.call(ask())
    assert len(cache) == 1
    assert openai_server.requests == 2


async def test_rerun_with_the_same_cache_makes_no_calls(openai_server: OpenAIServer) -> None:
    cache = MemoryCache()
    requests = [ask(i) for i in range(10)]
    for run in range(2):
        judge = make_judge(f"openai:test-model@{openai_server.base_url}", SETTINGS)
        async with JudgeClient(judge, settings=SETTINGS, cache=cache) as client:
            replies = [await client.call(request) for request in requests]
        if run == 0:
            assert not any(reply.cached for reply in replies)
            assert client.stats.calls == 10
        else:
            assert all(reply.cached and reply.latency_s == 0 for reply in replies)
            assert client.stats.cache_hits == 10
            assert client.stats.calls == 0
    assert openai_server.requests == 10


async def _flood(clients: list[JudgeClient], n: int) -> None:
    async with asyncio.TaskGroup() as group:
        for i in range(n):
            group.create_task(clients[i % len(clients)].call(ask(i)))


async def test_concurrency_limit_is_what_the_server_sees(openai_server: OpenAIServer) -> None:
    openai_server.latency_s = 0.03
    judge = OpenAIJudge("test-model", base_url=openai_server.base_url)
    async with JudgeClient(judge, settings=SETTINGS, concurrency=5) as client:
        await _flood([client], 50)
    assert openai_server.requests == 50
    assert openai_server.max_in_flight == 5
    assert client.stats.replies == 50


async def test_clients_of_one_endpoint_share_its_limit(openai_server: OpenAIServer) -> None:
    openai_server.latency_s = 0.03
    settings = Settings(endpoints={openai_server.base_url: EndpointSettings(concurrency=4)})
    first = JudgeClient(OpenAIJudge("model-a", base_url=openai_server.base_url), settings=settings)
    second = JudgeClient(OpenAIJudge("model-b", base_url=openai_server.base_url), settings=settings)
    async with first, second:
        await _flood([first, second], 50)
    assert first.concurrency == second.concurrency == 4
    assert openai_server.max_in_flight == 4
    assert first.stats.replies == second.stats.replies == 25


async def test_backoff_does_not_hold_the_concurrency_slot(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault("429", retry_after="0.4"))
    judge = OpenAIJudge("test-model", base_url=openai_server.base_url)
    async with JudgeClient(judge, settings=SETTINGS, concurrency=1) as client:
        first = asyncio.create_task(client.call(ask(1)))
        await asyncio.sleep(0.1)  # the first call is now backing off
        await client.call(ask(2))
        await first
    contents = [
        record.body["messages"][0]["content"] for record in openai_server.log if record.body
    ]
    assert contents == ["Is answer 1 helpful?", "Is answer 2 helpful?", "Is answer 1 helpful?"]
    assert gaps(openai_server)[0] < 0.3  # the second call did not wait for the backoff


async def test_named_concurrency_is_shared_per_name() -> None:
    inside = 0
    most = 0

    async def hold() -> None:
        nonlocal inside, most
        async with concurrency("shared-test-name", 2):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    async with asyncio.TaskGroup() as group:
        for _ in range(10):
            group.create_task(hold())
    assert most == 2


async def test_limits_resolve_argument_then_endpoint_then_defaults() -> None:
    judge = OpenAIJudge("m", base_url="http://judge.test/v1")
    endpoint = EndpointSettings(concurrency=3, timeout_s=7.0, max_retries=0)
    settings = Settings(endpoints={"http://judge.test/v1": endpoint})
    configured = JudgeClient(judge, settings=settings)
    assert (configured.concurrency, configured.timeout_s, configured.max_retries) == (3, 7.0, 0)
    explicit = JudgeClient(judge, settings=settings, concurrency=9, timeout_s=1.5, max_retries=2)
    assert (explicit.concurrency, explicit.timeout_s, explicit.max_retries) == (9, 1.5, 2)
    default = JudgeClient(judge)
    assert (default.concurrency, default.timeout_s, default.max_retries) == (16, 120.0, 5)
    assert default.spec == "openai:m@http://judge.test/v1"
    await judge.aclose()


async def test_usage_and_cost_are_accounted(openai_server: OpenAIServer) -> None:
    openai_server.usage = (100, 10)
    cache = MemoryCache()
    judge = make_judge(f"openai:gpt-4o-mini@{openai_server.base_url}", SETTINGS)
    async with JudgeClient(judge, settings=SETTINGS, cache=cache) as client:
        for i in range(3):
            await client.call(ask(i))
        await client.call(ask(0))  # a cache hit costs nothing
    stats = client.stats
    assert (stats.prompt_tokens, stats.completion_tokens) == (300, 30)
    assert stats.cost_usd == pytest.approx(3 * (100 * 0.15 + 10 * 0.60) / 1e6)
    assert (stats.replies, stats.cache_hits, stats.unpriced) == (3, 1, 0)
