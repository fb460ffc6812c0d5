"""Requests: cache keys are stable, and sampling parameters reach the endpoint."""

from __future__ import annotations

import hashlib
import json

from heldout.judges import JudgeClient, JudgeRequest, Message, make_judge
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer

REQUEST = JudgeRequest(messages=(Message(role="user", content="Hi"),), max_tokens=5)


def test_a_request_without_top_p_keeps_the_key_it_had_before_top_p_existed() -> None:
    before = REQUEST.model_dump(mode="json")
    del before["top_p"]
    canonical = json.dumps(
        {"provider": "openai", "model": "m", "request": before},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert REQUEST.cache_key(provider="openai", model="m") == expected
    other = REQUEST.model_copy(update={"top_p": 0.9})
    assert other.cache_key(provider="openai", model="m") != expected


async def test_top_p_is_sent_only_when_set(openai_server: OpenAIServer) -> None:
    settings = settings_for(openai_server)
    client = JudgeClient(make_judge(f"openai:m@{openai_server.base_url}", settings))
    await client.call(REQUEST)
    await client.call(REQUEST.model_copy(update={"top_p": 0.9}))
    await client.aclose()
    bodies = [r.body for r in openai_server.log if r.body is not None]
    assert "top_p" not in bodies[0]
    assert bodies[1]["top_p"] == 0.9
