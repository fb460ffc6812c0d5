"""The group writer: scores commit before write_score returns, many per transaction."""

from __future__ import annotations

import asyncio

import pytest

from heldout import StoreError
from heldout.evaluators import Score
from heldout.judges import JudgeReply, JudgeRequest, Message, ResponseCache
from heldout.store import GroupWriter, Store
from tests.store.conftest import Backend


def score(i: int) -> Score:
    return Score(sample_id=f"s{i}", cohort="c", evaluator="e", status="ok", value=0.5, passed=True)


def key(i: int) -> str:
    request = JudgeRequest(messages=(Message(role="user", content=f"question {i}"),))
    return request.cache_key(provider="openai", model="m")


def begin(store: Store) -> None:
    store.begin_run("r", name="r", kind="eval", config={})


async def test_a_score_is_committed_when_write_score_returns(
    store: Store, backend: Backend
) -> None:
    begin(store)
    async with GroupWriter(store) as writer:
        await writer.write_score("r", score(1))
        # Read on a separate connection: the row is committed, not just queued.
        assert backend.query("SELECT sample_key, value FROM scores") == [("s1", 0.5)]


async def test_concurrent_writes_share_transactions(store: Store, backend: Backend) -> None:
    begin(store)
    async with GroupWriter(store) as writer:
        await asyncio.gather(*(writer.write_score("r", score(i)) for i in range(200)))
        commits = writer.commits
    assert backend.query("SELECT count(*) FROM scores") == [(200,)]
    assert 1 <= commits < 200


async def test_a_queued_reply_is_served_before_and_after_its_commit(
    store: Store, backend: Backend
) -> None:
    begin(store)
    reply = JudgeReply(text="Yes", model="m")
    async with GroupWriter(store) as writer:
        cache: ResponseCache = writer
        cache.put(key(1), reply)
        assert cache.get(key(1)) == reply  # queued or committed: never a miss
        await writer.write_score("r", score(1))
        # The reply was queued before the score, so it committed with it or earlier.
        assert backend.query("SELECT count(*) FROM judge_cache") == [(1,)]
        assert cache.get(key(1)) == reply
        assert cache.get(key(2)) is None
    assert store.get(key(1)) == reply


async def test_a_failed_commit_reaches_the_writer_and_stops_later_writes(store: Store) -> None:
    # No run "missing" exists: the score breaks the foreign key.
    async with GroupWriter(store) as writer:
        with pytest.raises(StoreError, match="missing"):
            await writer.write_score("missing", score(1))
        with pytest.raises(StoreError):
            await writer.write_score("missing", score(2))
        with pytest.raises(StoreError):
            writer.put(key(1), JudgeReply(text="Yes", model="m"))


async def test_closing_commits_what_is_queued(store: Store, backend: Backend) -> None:
    writer = GroupWriter(store)
    for i in range(5):
        writer.put(key(i), JudgeReply(text="Yes", model="m"))
    await writer.aclose()
    assert backend.query("SELECT count(*) FROM judge_cache") == [(5,)]
    await writer.aclose()  # closing twice is fine
