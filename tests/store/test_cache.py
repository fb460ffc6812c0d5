"""The store as the judges' response cache."""

from __future__ import annotations

from heldout.judges import JudgeReply, JudgeRequest, Message, ResponseCache, Usage
from heldout.store import Store
from tests.store.conftest import Backend

REPLY = JudgeReply(
    text="Yes",
    choice_probs={"Yes": 0.75, "No": 0.25},
    data={"verdict": "pass", "claims": [1, 2]},
    model="judge-1",
    usage=Usage(prompt_tokens=12, completion_tokens=1),
    cost_usd=0.0001,
    latency_s=0.42,
)


def key() -> str:
    request = JudgeRequest(messages=(Message(role="user", content="Is it grounded?"),))
    return request.cache_key(provider="openai", model="judge-1")


def test_the_store_is_a_response_cache(store: Store) -> None:
    cache: ResponseCache = store
    assert cache.get(key()) is None


def test_put_then_get_round_trips(store: Store) -> None:
    store.put(key(), REPLY, provider="openai")
    assert store.get(key()) == REPLY


def test_a_second_put_keeps_the_first_reply(store: Store, backend: Backend) -> None:
    store.put(key(), REPLY)
    store.put(key(), REPLY.model_copy(update={"text": "No"}))
    assert store.get(key()) == REPLY
    assert backend.query("SELECT count(*), min(model) FROM judge_cache") == [(1, "judge-1")]


def test_cached_replies_outlive_the_store(backend: Backend) -> None:
    with backend.open() as store:
        store.put(key(), REPLY)
    with backend.open() as store:
        assert store.get(key()) == REPLY
