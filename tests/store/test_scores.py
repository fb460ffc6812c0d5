"""Samples and scores: idempotent upserts, resume bookkeeping and SQL aggregates."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from heldout import Sample, Score, StoreError
from heldout.store import CohortAggregate, Store, sample_key
from tests.store.conftest import Backend

RUN = "run-1"


@pytest.fixture
def run(store: Store) -> Store:
    """The store with run ``RUN`` begun."""
    store.begin_run(RUN, name="test", kind="eval", config={})
    return store


def ok(
    sample_id: str, value: float, passed: bool | None, *, evaluator: str = "e", cohort: str = "c"
) -> Score:
    return Score(
        sample_id=sample_id,
        cohort=cohort,
        evaluator=evaluator,
        status="ok",
        value=value,
        passed=passed,
    )


def error(sample_id: str, *, evaluator: str = "e", cohort: str = "c", **extra: Any) -> Score:
    return Score(
        sample_id=sample_id,
        cohort=cohort,
        evaluator=evaluator,
        status="error",
        error_kind="timeout",
        error="no reply in 5s",
        **extra,
    )


def skipped(sample_id: str, *, evaluator: str = "e", cohort: str = "c") -> Score:
    return Score(
        sample_id=sample_id, cohort=cohort, evaluator=evaluator, status="skipped", reason="no ctx"
    )


def test_sample_key() -> None:
    assert sample_key("q1") == "q1"
    assert sample_key("q1", "step-200") == "step-200/q1"


def test_put_samples_is_an_idempotent_upsert(run: Store, backend: Backend) -> None:
    samples = [Sample(id=f"s{i}", cohort="helpful", input=f"q{i}", output="a") for i in range(3)]
    run.put_samples(RUN, samples)
    run.put_samples(RUN, samples)
    run.put_samples(RUN, [Sample(id="s1", cohort="helpful", input="q1", output="changed")])
    rows = backend.query(
        "SELECT sample_key, sample_id, output FROM samples WHERE run_id = :r ORDER BY sample_key",
        r=RUN,
    )
    assert rows == [("s0", "s0", "a"), ("s1", "s1", "changed"), ("s2", "s2", "a")]


def test_put_samples_keys_rows_by_checkpoint(run: Store, backend: Backend) -> None:
    sample = Sample(id="q", input="x", metadata={"labels": ["a", "é"], "n": {"deep": 1.5}})
    run.put_samples(RUN, [sample], checkpoint="step-1")
    run.put_samples(RUN, [sample], checkpoint="step-2")
    run.put_samples(RUN, (Sample(id=f"bulk{i}", input="x") for i in range(2500)))
    rows = backend.query(
        "SELECT sample_key, checkpoint FROM samples WHERE sample_id = 'q' ORDER BY sample_key"
    )
    assert rows == [("step-1/q", "step-1"), ("step-2/q", "step-2")]
    assert backend.query("SELECT count(*) FROM samples") == [(2502,)]


def test_samples_of_an_unknown_run_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="write samples of run 'ghost'"):
        store.put_samples("ghost", [Sample(id="s", input="x")])


def test_rewriting_a_score_replaces_it(run: Store, backend: Backend) -> None:
    run.write_score(RUN, error("s1"))
    run.write_score(RUN, error("s1"))
    [first] = run.scores(RUN)
    assert (first.status, first.error_kind, first.error) == ("error", "timeout", "no reply in 5s")

    run.write_score(RUN, ok("s1", 0.75, True))
    [second] = run.scores(RUN)
    assert (second.status, second.value, second.passed) == ("ok", 0.75, True)
    assert (second.error_kind, second.error) == (None, None)
    assert backend.query("SELECT count(*) FROM scores") == [(1,)]


def test_a_stored_score_round_trips(run: Store) -> None:
    score = Score(
        sample_id="s1",
        cohort="honesty",
        evaluator="custom:harmlessness",
        status="ok",
        value=0.25,
        passed=False,
        reason="hedges — then refuses",
        judge="openai:gpt-x",
        template_version="v3",
        calls=2,
        cached_calls=1,
        metadata={"claims": [{"text": "x", "verdict": True}], "p": 0.125},
    )
    run.write_score(RUN, score, checkpoint="ckpt")
    [stored] = run.scores(RUN)
    assert stored.sample_key == "ckpt/s1"
    assert stored.checkpoint == "ckpt"
    assert Score(**stored.model_dump(exclude={"sample_key", "checkpoint"})) == score
    [light] = run.scores(RUN, metadata=False)
    assert light.metadata == {}
    assert light.model_copy(update={"metadata": score.metadata}) == stored


def test_write_scores_and_filters(run: Store) -> None:
    run.write_scores(
        RUN,
        [
            ok("a", 1.0, True, evaluator="e1", cohort="x"),
            ok("a", 0.0, False, evaluator="e2", cohort="x"),
            ok("b", 0.5, True, evaluator="e1", cohort="y"),
        ],
    )
    run.write_scores(RUN, [ok("a", 0.9, True, evaluator="e1", cohort="x")], checkpoint="c2")
    keys = [(s.sample_key, s.evaluator) for s in run.scores(RUN)]
    assert keys == [("a", "e1"), ("a", "e2"), ("b", "e1"), ("c2/a", "e1")]
    assert {s.sample_id for s in run.scores(RUN, evaluator="e1", cohort="x")} == {"a"}
    assert len(run.scores(RUN, evaluator="e1", cohort="x")) == 2
    assert [s.value for s in run.scores(RUN, checkpoint="c2")] == [0.9]
    assert run.scores("other-run") == []


def test_scores_of_an_unknown_run_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match=r"write a score of run 'ghost'.*call begin_run first"):
        store.write_score("ghost", ok("s", 1.0, True))


def test_finished_leaves_out_errors(run: Store) -> None:
    run.write_scores(RUN, [ok("a", 1.0, True), error("b"), skipped("c")])
    run.write_score(RUN, ok("a", 1.0, True, evaluator="other"), checkpoint="k")
    assert run.finished(RUN) == {("a", "e"), ("c", "e"), ("k/a", "other")}
    run.write_score(RUN, ok("b", 0.0, False))
    assert ("b", "e") in run.finished(RUN)


def test_aggregate_counts_errors_beside_the_mean_of_ok_scores(run: Store) -> None:
    # Errors and skips carry a value and a verdict here on purpose: were they averaged
    # in, the mean and fail rate would change.
    run.write_scores(
        RUN,
        [
            ok("1", 1.0, True),
            ok("2", 0.5, False),
            ok("3", 0.0, False),
            error("4", value=1.0, passed=False),
            error("5", value=1.0, passed=True),
            skipped("6"),
            # cohort "only-errors": no ok score at all.
            error("7", cohort="only-errors"),
            # cohort "no-verdict": one ok score has no pass/fail verdict.
            ok("8", 0.2, None, cohort="no-verdict"),
            ok("9", 0.4, False, cohort="no-verdict"),
        ],
    )
    run.write_score(RUN, ok("1", 0.8, True), checkpoint="step-9")
    got = {(a.checkpoint, a.cohort): a for a in run.aggregate(RUN)}
    assert list(got) == [(None, "c"), (None, "no-verdict"), (None, "only-errors"), ("step-9", "c")]

    main = got[(None, "c")]
    assert (main.n_ok, main.n_error, main.n_skipped, main.n_failed) == (3, 2, 1, 2)
    assert main.mean == pytest.approx(0.5)
    assert main.fail_rate == pytest.approx(2 / 3)

    assert got[(None, "only-errors")] == CohortAggregate(
        checkpoint=None,
        cohort="only-errors",
        evaluator="e",
        n_ok=0,
        n_error=1,
        n_skipped=0,
        n_failed=0,
        mean=None,
        fail_rate=None,
    )
    no_verdict = got[(None, "no-verdict")]
    assert no_verdict.mean == pytest.approx(0.3)
    assert no_verdict.fail_rate == pytest.approx(1.0)

    step = got[("step-9", "c")]
    assert (step.n_ok, step.mean, step.fail_rate) == (1, pytest.approx(0.8), 0.0)
    assert run.aggregate("other-run") == []


def test_writes_from_many_threads_are_all_kept(run: Store) -> None:
    def write(worker: int) -> None:
        for i in range(50):
            run.write_score(RUN, ok(f"{worker}-{i}", 0.5, True))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(run.finished(RUN)) == 200


def test_values_postgresql_refuses_are_stored_cleaned_on_both_backends(run: Store) -> None:
    # A -inf log-probability or a NUL byte in a model's output must not stop a run.
    score = Score(
        sample_id="s\x00",
        cohort="c",
        evaluator="e",
        status="ok",
        value=0.5,
        reason="garbled\x00reply",
        metadata={"logprob": -math.inf, "p": [math.nan, 0.5], "raw": "a\x00b", "ok": "é"},
    )
    run.write_score(RUN, score)
    run.put_samples(RUN, [Sample(id="s\x00", input="q\x00", metadata={"x": math.inf})])
    [stored] = run.scores(RUN)
    assert stored.sample_id == stored.sample_key == "s\ufffd"
    assert stored.reason == "garbled\ufffdreply"
    assert stored.metadata == {"logprob": None, "p": [None, 0.5], "raw": "a\ufffdb", "ok": "é"}
    assert run.finished(RUN) == {("s\ufffd", "e")}
