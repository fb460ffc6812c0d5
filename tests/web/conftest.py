"""A real heldout server on 127.0.0.1 over a real SQLite store, with cohort rules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from heldout import Store
from heldout.config import ServerSettings, Settings
from heldout.tracing import CohortRules
from heldout.web import create_app
from tests.store.conftest import backend, pg_base_url, store
from tests.support.live_server import LiveServer

__all__ = ["backend", "pg_base_url", "serve", "served", "store"]

TOKEN = "test-token-0123456789abcdef"
RULES = CohortRules.model_validate(
    {
        "cohorts": [
            {"name": "refunds", "match": [{"field": "input", "regex": "(?i)refund"}]},
            {"name": "all-traffic"},
        ]
    }
)


@dataclass
class Served:
    """A running server and the store behind it."""

    url: str
    store: Store
    token: str | None

    def headers(self, **extra: str) -> dict[str, str]:
        """Headers carrying the token."""
        return {"Authorization": f"Bearer {self.token}", **extra}


def serve(
    tmp_path: Path,
    *,
    token: str | None = TOKEN,
    rules: CohortRules = RULES,
    settings: Settings | None = None,
    **server: object,
) -> Iterator[Served]:
    store = Store.open(f"sqlite:///{tmp_path / 'heldout.db'}")
    config = ServerSettings.model_validate({"token": token, **server})
    try:
        app = create_app(store, config, rules=rules, settings=settings)
        with LiveServer(app) as live:
            yield Served(live.base_url, store, token)
    finally:
        store.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A server with a token, its store and cohort rules."""
    yield from serve(tmp_path)
