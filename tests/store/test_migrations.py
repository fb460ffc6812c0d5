"""The schema is Alembic's: created on first open, kept on reopen, newer ones refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from heldout import StoreError
from heldout.store._migrate import alembic_config, current_revision, head_revision
from heldout.store._schema import metadata
from tests.store.conftest import Backend

TABLES = {
    "runs",
    "samples",
    "scores",
    "judge_cache",
    "trace_spans",
    "traces",
    "cohort_members",
    "spot_check_labels",
    "cohort_member_bands",
    "cohort_classes",
    "alembic_version",
}


def test_a_new_database_is_migrated_to_head(backend: Backend) -> None:
    store = backend.open()
    store.close()
    engine = backend.engine()
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision() == "0003"
        assert set(sa.inspect(conn).get_table_names()) >= TABLES
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("scores")}
    engine.dispose()
    assert "ix_scores_aggregate" in indexes


def test_the_migrated_schema_matches_the_tables_the_code_uses(backend: Backend) -> None:
    backend.open().close()
    engine = backend.engine()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_reopening_an_existing_store_keeps_its_data(backend: Backend) -> None:
    with backend.open() as store:
        store.begin_run("r1", name="first", kind="eval", config={"k": 1})
    with backend.open() as store:
        run = store.get_run("r1")
    assert run is not None
    assert run.name == "first"
    assert backend.query("SELECT version_num FROM alembic_version") == [("0003",)]


def test_a_schema_from_a_newer_heldout_is_refused(backend: Backend) -> None:
    backend.open().close()
    backend.query("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match=r"revision '9999'.*newer heldout") as info:
        backend.open()
    assert "Upgrade heldout" in str(info.value)


def test_downgrade_to_base_and_upgrade_again(backend: Backend) -> None:
    backend.open().close()
    engine = backend.engine()
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    with backend.open() as store:
        assert store.list_runs() == []
