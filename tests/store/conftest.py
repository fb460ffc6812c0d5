"""Store fixtures: every test taking ``backend`` or ``store`` runs on SQLite and PostgreSQL.

The PostgreSQL case needs the server from ``scripts/postgres.sh``; without it the test
fails (never skips), so a green run always means both backends were exercised. Each
PostgreSQL test gets a fresh schema, selected through ``search_path`` in the URL, and
drops it afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from heldout.store import Store
from heldout.store._engine import create_engine
from heldout.store._url import parse_url
from tests.support import postgres


@dataclass(frozen=True)
class Backend:
    """One database to run a store test on."""

    name: str
    """``sqlite`` or ``postgresql``."""
    url: str
    """The URL to open the store with (password included)."""

    def open(self) -> Store:
        """A new store on this database."""
        return Store.open(self.url)

    def engine(self) -> sa.Engine:
        """A separate engine on the same database, configured like the store's."""
        return create_engine(parse_url(self.url))

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run ``sql`` on a separate connection and return its rows."""
        engine = self.engine()
        try:
            with engine.begin() as conn:
                result = conn.execute(sa.text(sql), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    """The test PostgreSQL's URL; fails the test when it is unset or unreachable."""
    return postgres.pg_base_url()


def _pg_backend(base_url: str) -> Iterator[Backend]:
    with postgres.pg_schema(base_url) as url:
        yield Backend("postgresql", url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty database: a SQLite file in ``tmp_path``, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{tmp_path / 'heldout.db'}")
    else:
        yield from _pg_backend(request.getfixturevalue("pg_base_url"))


@pytest.fixture
def pg_backend(pg_base_url: str) -> Iterator[Backend]:
    """An empty PostgreSQL schema, for tests of PostgreSQL-only behaviour."""
    yield from _pg_backend(pg_base_url)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    """An open store on ``backend``, closed after the test."""
    opened = backend.open()
    yield opened
    opened.close()
