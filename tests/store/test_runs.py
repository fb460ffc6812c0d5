"""Run lifecycle: begin, finish, reopen to resume, list."""

from __future__ import annotations

import pytest

from heldout import StoreError
from heldout.store import Store


def test_begin_run_creates_a_running_run(store: Store) -> None:
    run = store.begin_run("r1", name="helpfulness", kind="eval", config={"judge": "openai:x"})
    assert (run.id, run.name, run.kind, run.status) == ("r1", "helpfulness", "eval", "running")
    assert run.config == {"judge": "openai:x"}
    assert run.created_at == run.updated_at
    assert run.created_at.utcoffset() is not None
    assert store.get_run("r1") == run


def test_finish_then_reopen_keeps_created_at_and_runs_again(store: Store) -> None:
    first = store.begin_run("r1", name="a", kind="eval", config={})
    store.finish_run("r1", "interrupted")
    finished = store.get_run("r1")
    assert finished is not None
    assert finished.status == "interrupted"
    assert finished.updated_at >= first.updated_at

    reopened = store.begin_run("r1", name="a again", kind="eval", config={"v": 2})
    assert reopened.status == "running"
    assert reopened.created_at == first.created_at
    assert reopened.name == "a again"
    assert reopened.config == {"v": 2}
    store.finish_run("r1", "done")
    done = store.get_run("r1")
    assert done is not None
    assert done.status == "done"


def test_list_runs_newest_first(store: Store) -> None:
    for run_id in ("a", "b", "c"):
        store.begin_run(run_id, name=run_id, kind="eval", config={})
    assert [r.id for r in store.list_runs()] == ["c", "b", "a"]


def test_unknown_run_is_none(store: Store) -> None:
    assert store.get_run("nope") is None
    assert store.list_runs() == []


def test_finishing_an_unknown_run_raises(store: Store) -> None:
    with pytest.raises(StoreError, match=r"No run 'nope'.*begin_run"):
        store.finish_run("nope", "done")


def test_finishing_with_an_unknown_status_raises(store: Store) -> None:
    store.begin_run("r1", name="a", kind="eval", config={})
    with pytest.raises(StoreError, match=r"'finished'.*done, failed, interrupted"):
        store.finish_run("r1", "finished")


def test_reopening_a_run_as_another_kind_raises(store: Store) -> None:
    store.begin_run("r1", name="a", kind="eval", config={})
    with pytest.raises(StoreError, match="is a 'eval' run, not 'regress'"):
        store.begin_run("r1", name="a", kind="regress", config={})
    run = store.get_run("r1")
    assert run is not None
    assert run.kind == "eval"


def test_a_closed_store_refuses_work(store: Store) -> None:
    store.close()
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.list_runs()
