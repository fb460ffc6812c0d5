"""The test PostgreSQL: its URL from the environment, and a fresh schema per test.

The server comes from ``scripts/postgres.sh``; a test that needs it fails (never
skips) when it is missing, so a green run always means PostgreSQL was exercised.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from heldout.store._engine import create_engine
from heldout.store._url import parse_url

PG_ENV = "HELDOUT_TEST_PG_URL"
START_PG = 'eval "$(bash scripts/postgres.sh | tail -1)"'


def pg_base_url() -> str:
    """The test PostgreSQL's URL; fails the test when it is unset or unreachable."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.fail(f"{PG_ENV} is not set: start the test PostgreSQL with {START_PG}")
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        pytest.fail(f"PostgreSQL at {PG_ENV} is unreachable ({exc.__class__.__name__}): {START_PG}")
    finally:
        engine.dispose()
    return url


@contextmanager
def pg_schema(base_url: str) -> Iterator[str]:
    """A new empty schema, as a URL (password included) that selects it through
    ``search_path``; dropped on exit."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(parse_url(base_url))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
