"""Engines for the two backends, and SQLAlchemy errors turned into StoreError.

SQLite gets a file in WAL mode (readers never block the writer), ``synchronous=NORMAL``
(a commit is durable against a process crash, which is what a killed run needs, without
an fsync per row), a busy timeout, and foreign keys. pysqlite's own transaction handling
is switched off (every statement autocommits unless a BEGIN was sent): the store sends
``BEGIN IMMEDIATE`` itself for writes, because a deferred transaction that reads before
it writes can fail at once with "database is locked" when another process writes in
between, whatever the busy timeout.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from heldout._errors import StoreError
from heldout.store._sql import dumps
from heldout.store._url import mask_url, sqlite_path

BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's write lock."""
PG_CONNECT_TIMEOUT_S = 10
"""How long to wait for a PostgreSQL server to answer before giving up."""


def create_engine(url: URL) -> Engine:
    """An engine for ``url`` (SQLite or PostgreSQL), configured as described above.

    Raises:
        StoreError: The driver is missing or the SQLite folder cannot be created.
    """
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    try:
        return sa.create_engine(
            url,
            json_serializer=dumps,
            connect_args={
                "connect_timeout": PG_CONNECT_TIMEOUT_S,
                "application_name": "heldout",
            },
        )
    except ImportError as exc:
        raise StoreError(
            f"Cannot open the store at {mask_url(url)}: its driver is not installed "
            f"({exc}). Install it with: pip install 'heldout[postgres]'."
        ) from exc


def _sqlite_engine(url: URL) -> Engine:
    path = sqlite_path(url)
    kwargs: dict[str, Any] = {}
    if path is None:
        # An in-memory database lives as long as its one connection: share it.
        kwargs["poolclass"] = StaticPool
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the folder {str(path.parent)!r} for the store at "
                f"{mask_url(url)}: {exc}. Choose a writable location in HELDOUT_DB_URL."
            ) from exc
    engine = sa.create_engine(
        url,
        json_serializer=dumps,
        # The store serialises use of its one connection with a lock, so the
        # connection may move between threads (e.g. asyncio.to_thread).
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
        **kwargs,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite must not emit BEGIN on its own: the store does (see the module doc).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """Put the database in WAL mode, waiting up to the busy timeout for the lock.

    Switching the journal mode needs the database to itself, and SQLite answers "database
    is locked" at once, without its busy handler, when another process is opening the
    same new file at that moment. So the switch is retried here, with short growing
    sleeps, until the busy timeout runs out. Once a file is in WAL mode it stays so, and
    the switch is a no-op for every later connection.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


# Errors of a database that cannot be reached or opened (rather than of a statement).
_UNREACHABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sqlite3.OperationalError)


def begin_sqlite(connection: Connection, *, write: bool) -> None:
    """Open a SQLite transaction; ``write`` takes the write lock now (BEGIN IMMEDIATE).

    Sent straight to the driver: through SQLAlchemy it would cost a whole execution
    context, a quarter of a ``write_score``. Errors come back as ``sqlite3.Error``.
    """
    driver: Any = connection.connection.driver_connection
    driver.execute("BEGIN IMMEDIATE" if write else "BEGIN")


def store_error(action: str, url: URL, exc: SQLAlchemyError | sqlite3.Error) -> StoreError:
    """A StoreError for ``exc``, saying what failed, where, and what to do.

    The message names the URL with its password masked, and quotes the driver's own
    message rather than SQLAlchemy's, which would repeat the statement and its
    parameters (whole model outputs).
    """
    where = mask_url(url)
    detail = _driver_message(exc)
    if url.password:
        detail = detail.replace(str(url.password), "***")
    lowered = detail.lower()
    if "locked" in lowered or "busy" in lowered:
        hint = (
            "Another process held the database longer than the busy timeout "
            f"({BUSY_TIMEOUT_S:g}s); retry, or use PostgreSQL for many concurrent writers."
        )
    elif isinstance(exc, sa.exc.IntegrityError | sqlite3.IntegrityError):
        hint = (
            "A row breaks a constraint of the schema, most often a score or sample of a "
            "run that is not in the store: call begin_run first."
        )
    elif isinstance(exc, _UNREACHABLE):
        hint = (
            "Check that the database server is running and reachable and that "
            "HELDOUT_DB_URL (user, password, host, port, database) is right; for the "
            'tests, start PostgreSQL with: eval "$(bash scripts/postgres.sh | tail -1)".'
        )
    else:
        hint = "This is likely a bug in heldout or a damaged database; please report it."
    return StoreError(f"Cannot {action} in the store at {where}: {detail}. {hint}")


def _driver_message(exc: SQLAlchemyError | sqlite3.Error) -> str:
    source: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        source = exc.orig
    lines = [line.strip() for line in str(source).strip().splitlines() if line.strip()]
    text = "; ".join(lines[:3]) or type(source).__name__
    return text[:500].rstrip(".")
