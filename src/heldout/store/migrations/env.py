"""Alembic environment of the heldout store.

``heldout.store._migrate`` runs it on the connection ``Store.open`` already holds,
inside that connection's transaction (passed as ``config.attributes["connection"]``),
so no ``alembic.ini`` and no second connection are needed. ``alembic upgrade --sql``
(offline mode) renders the SQL for ``sqlalchemy.url`` instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from heldout._errors import StoreError
from heldout.store._schema import metadata


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters tables by copy-and-move; batch mode writes that for us.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _connection = context.config.attributes.get("connection")
    if not isinstance(_connection, Connection):
        raise StoreError(
            "The heldout store migrations run from Store.open(), which passes its "
            "connection in config.attributes['connection']."
        )
    _run_online(_connection)
