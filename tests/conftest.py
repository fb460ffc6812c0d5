"""Fixtures shared across the suite: a real OpenAI-protocol server, a SQLite store, a
fresh PostgreSQL schema and a real Ray cluster."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from heldout import Settings, Store
from heldout.config import EndpointSettings, JudgeDefaults
from tests.support.openai_server import OpenAIServer
from tests.support.postgres import pg_base_url, pg_schema


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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema of the test PostgreSQL, as a URL; dropped after the test."""
    with pg_schema(pg_base_url()) as url:
        yield url


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """A real single-node Ray cluster, started once for the session: 2 CPUs, a 100 MB
    object store, no dashboard. Yields its address, for processes that join it."""
    # Ray as heldout imports it: heldout sets how Ray starts workers before the import.
    from heldout.runner._ray import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
