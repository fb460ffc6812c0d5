"""Trace storage tests run on SQLite and PostgreSQL, like the store's own."""

from tests.store.conftest import backend, pg_base_url, store

__all__ = ["backend", "pg_base_url", "store"]
