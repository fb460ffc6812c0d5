"""The evaluator tests' judge: a client of the test server with an in-memory cache."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from heldout.judges import JudgeClient, MemoryCache, make_judge
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer


@pytest.fixture
async def client(openai_server: OpenAIServer) -> AsyncIterator[JudgeClient]:
    """A client of ``openai:test-model`` on ``openai_server``, closed after the test."""
    settings = settings_for(openai_server)
    judge = make_judge("openai:test-model", settings)
    async with JudgeClient(judge, settings=settings, cache=MemoryCache()) as judge_client:
        yield judge_client
