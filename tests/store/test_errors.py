"""URLs, and SQLAlchemy errors turned into StoreError at the boundary."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from heldout import Score, StoreError
from heldout.store import Store, _engine
from heldout.store._engine import create_engine
from heldout.store._url import mask_url, parse_url
from tests.store.conftest import Backend


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgres://u:p@db/x", "postgresql+psycopg"),
        ("postgresql://u:p@db/x", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@db/x", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_postgres_urls_use_psycopg(given: str, driver: str) -> None:
    assert parse_url(given).drivername == driver


def test_mask_url_hides_the_password() -> None:
    assert mask_url(parse_url("postgres://me:hunter2@db:5432/x")) == (
        "postgresql+psycopg://me:***@db:5432/x"
    )


@pytest.mark.parametrize("url", ["mysql://u:p@db/x", "not a url"])
def test_unsupported_or_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match=r"sqlite|postgresql"):
        Store.open(url)


def test_an_unreachable_server_names_the_url_without_its_password() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(StoreError) as info:
        Store.open("postgres://heldout:s3cret-pw@127.0.0.1:1/nowhere")
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "postgresql+psycopg://heldout:***@127.0.0.1:1/nowhere" in message
    assert "Cannot connect" in message
    assert "Connection refused" in message
    assert "HELDOUT_DB_URL" in message


def test_an_uncreatable_sqlite_folder_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="Cannot create the folder"):
        Store.open(f"sqlite:///{blocker / 'sub' / 'heldout.db'}")


def test_the_default_url_is_a_file_in_dot_heldout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Store.open() as store:
        assert (store.url, store.dialect) == ("sqlite:///.heldout/heldout.db", "sqlite")
    assert (tmp_path / ".heldout" / "heldout.db").is_file()


def test_an_in_memory_store_works() -> None:
    with Store.open("sqlite:///:memory:") as store:
        store.begin_run("r", name="r", kind="eval", config={})
        assert [r.id for r in store.list_runs()] == ["r"]


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'heldout.db'}"
    Store.open(url).close()
    engine = create_engine(parse_url(url))
    with engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    engine.dispose()
    # synchronous 1 is NORMAL.
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 30000,
    }


def test_a_locked_database_is_a_store_error_with_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_engine, "BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "heldout.db"
    store = Store.open(f"sqlite:///{path}")
    store.begin_run("r", name="r", kind="eval", config={})
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(StoreError, match=r"database is locked.*busy timeout"):
            store.finish_run("r", "done")
        assert store.get_run("r") is not None  # reading still works meanwhile
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.finish_run("r", "done")  # and the store recovers once the lock is gone
    run = store.get_run("r")
    assert run is not None
    assert run.status == "done"
    store.close()


@pytest.mark.postgres
def test_a_dropped_postgres_connection_is_replaced(pg_backend: Backend) -> None:
    def backend_pid(conn: sa.Connection) -> int:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())

    with pg_backend.open() as store:
        store.begin_run("r", name="r", kind="eval", config={})
        # The store's own two connections (autocommit and transactional), no others.
        pids = {store._run("pid", backend_pid), store._run("pid", backend_pid, many=True)}
        pg_backend.query(
            "SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid",
            pids=sorted(pids),
        )
        store.write_score("r", Score(sample_id="s", cohort="c", evaluator="e", status="ok"))
        store.begin_run("r", name="r", kind="eval", config={})
        assert store.finished("r") == {("s", "e")}
