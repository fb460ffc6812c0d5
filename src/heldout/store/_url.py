"""Database URLs: the default, the accepted spellings, and a printable form."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from heldout._errors import StoreError

DEFAULT_URL = "sqlite:///.heldout/heldout.db"
"""A SQLite file in ``.heldout/`` of the working directory."""

SUPPORTED = ("sqlite", "postgresql")


def parse_url(url: str) -> URL:
    """Parse ``url`` and point PostgreSQL URLs at the psycopg 3 driver.

    ``postgres://`` and ``postgresql://`` (the spellings hosting providers hand out)
    become ``postgresql+psycopg://``; an explicit driver is left alone.

    Raises:
        StoreError: The URL cannot be parsed or names a database heldout does not support.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"Cannot parse the store URL {url!r}: {exc}. Use e.g. "
            "'sqlite:///.heldout/heldout.db' or 'postgresql://user:pass@host/db'."
        ) from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise StoreError(
            f"The store URL {mask_url(parsed)} names {backend!r}; heldout stores results "
            f"in one of: {', '.join(SUPPORTED)}."
        )
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def mask_url(url: URL) -> str:
    """``url`` as a string with its password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)
