"""Schema versions: Alembic, run in code on the store's own connection.

The revisions ship inside the package (``migrations/versions``), so a store migrates
itself wherever heldout is installed; no ``alembic.ini`` is read. To add a revision,
change ``_schema.py`` and let Alembic draft the script against a store at head::

    from alembic import command
    from heldout.store._migrate import alembic_config
    command.revision(alembic_config(), "what changed", rev_id="0002")

then edit the draft by hand (spell the schema out, do not import ``_schema``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection

from heldout._errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"

# Any constant: the key of the PostgreSQL advisory lock that serialises first opens.
_PG_MIGRATION_LOCK = 0x68656C64


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged revisions, bound to ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships at least one revision
        raise StoreError(f"No schema revisions found in {MIGRATIONS}; reinstall heldout.")
    return head


def current_revision(connection: Connection) -> str | None:
    """The schema revision recorded in the database, or None for an empty database."""
    return MigrationContext.configure(connection).get_current_revision()


def migrate(connection: Connection, where: str) -> None:
    """Bring the database behind ``connection`` to the head revision.

    Runs inside the connection's current transaction, which the caller commits: on
    PostgreSQL an advisory lock and on SQLite ``BEGIN IMMEDIATE`` make concurrent first
    opens wait for each other instead of creating the tables twice.

    Args:
        connection: An open connection, inside a transaction.
        where: The store's URL with the password masked, for messages.

    Raises:
        StoreError: The database carries a revision this code does not know, i.e. it
            was written by a newer heldout.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    config = alembic_config(connection)
    script = ScriptDirectory.from_config(config)
    current = current_revision(connection)
    head = script.get_current_head()
    if current == head:
        return
    if current is not None:
        try:
            script.get_revision(current)
        except CommandError as exc:
            raise StoreError(
                f"The store at {where} has schema revision {current!r}, which this version "
                f"of heldout does not know (its newest is {head!r}): a newer heldout wrote "
                "it. Upgrade heldout, or point HELDOUT_DB_URL at another database."
            ) from exc
    command.upgrade(config, "head")
