"""Fixtures shared across the suite: a real OpenAI-protocol server and a SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from heldout import Settings, Store
from heldout.config import EndpointSettings, JudgeDefaults
from tests.support.openai_server import OpenAIServer


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A fresh fault-injecting OpenAI-protocol server on 127.0.0.1."""
    with OpenAIServer() as server:
        yield server


def settings_for(server: OpenAIServer, db: Path | None = None, concurrency: int = 8) -> Settings:
    """Settings that point the ``openai`` provider at ``server`` with fast backoff."""
    return Settings(
        openai_api_key="sk-test",
        openai_base_url=server.base_url,
        db_url=f"sqlite:///{db}" if db else "sqlite:///:memory:",
        judge=JudgeDefaults(timeout_s=5, max_retries=2, backoff_base_s=0.01, backoff_max_s=0.05),
        endpoints={server.base_url: EndpointSettings(concurrency=concurrency)},
    )


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A real SQLite store in a temporary folder."""
    store = Store.open(f"sqlite:///{tmp_path / 'heldout.db'}")
    yield store
    store.close()
