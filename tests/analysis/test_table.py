"""regression_table and row_changes on constructed stored scores."""

from __future__ import annotations

import json
import random

import pytest

from heldout import ConfigError, DataError
from heldout.analysis import adjust_p_values, paired_test, regression_table, row_changes
from heldout.evaluators import ScoreStatus
from heldout.store import StoredScore

RESAMPLES = 999


def score(
    checkpoint: str | None,
    sample_id: str,
    value: float | None,
    *,
    cohort: str = "core",
    metric: str = "task_completion",
    status: ScoreStatus = "ok",
    passed: bool | None = None,
    reason: str = "",
) -> StoredScore:
    return StoredScore(
        sample_id=sample_id,
        cohort=cohort,
        evaluator=metric,
        status=status,
        value=value if status == "ok" else None,
        passed=passed if status == "ok" else None,
        reason=reason,
        error_kind="timeout" if status == "error" else None,
        checkpoint=checkpoint,
        sample_key=f"{checkpoint}/{sample_id}",
    )


def sweep(n: int = 20) -> list[StoredScore]:
    """base; step-1 better on honesty; step-2 much worse on task_completion in 'math'."""
    scores = []
    for i in range(n):
        sid = f"q{i}"
        jitter = (i % 5) / 50
        for cohort in ("math", "chat"):
            for cp, honesty, task in [
                ("base", 0.5, 0.7),
                ("step-1", 0.7, 0.7),
                ("step-2", 0.5, 0.4 if cohort == "math" else 0.7),
            ]:
                scores.append(score(cp, sid, honesty + jitter, cohort=cohort, metric="honesty"))
                scores.append(score(cp, sid, task + jitter, cohort=cohort))
    return scores


def test_errors_are_counted_never_averaged_in() -> None:
    scores = [
        score("base", "a", 1.0, passed=True),
        score("base", "b", 0.0, passed=False),
        score("base", "c", 1.0, passed=None),
        score("base", "d", None, status="error"),
        score("base", "e", None, status="skipped"),
    ]
    row = regression_table(scores, baseline="base", n_resamples=RESAMPLES).row(
        "base", "core", "task_completion"
    )
    assert row is not None
    assert (row.n, row.n_error, row.n_skipped) == (3, 1, 1)
    assert row.mean == pytest.approx(2 / 3)
    assert row.ci_low is not None
    assert row.ci_high is not None
    assert row.mean is not None
    assert row.ci_low <= row.mean <= row.ci_high
    assert row.fail_rate == pytest.approx(1 / 2)  # "c" has no verdict
    assert row.n_paired is None  # baseline rows carry no comparison
    assert row.delta is None
    assert row.significant is False


def test_pairs_only_prompts_both_sides_scored_ok() -> None:
    scores = [
        *(score("base", f"q{i}", v) for i, v in enumerate([0.2, 0.4, 0.6, 0.8])),
        score("cand", "q0", None, status="error"),
        score("cand", "q1", 0.5),
        score("cand", "q2", 0.9),
        score("cand", "q3", 0.8),
        score("cand", "q9", 0.0),  # no baseline score for q9
    ]
    table = regression_table(scores, baseline="base", n_resamples=RESAMPLES)
    row = table.row("cand", "core", "task_completion")
    assert row is not None
    assert row.n == 4
    assert row.n_error == 1
    assert row.mean == pytest.approx((0.5 + 0.9 + 0.8 + 0.0) / 4)
    assert row.n_paired == 3
    assert row.delta == pytest.approx((0.1 + 0.3 + 0.0) / 3)
    expected = paired_test([0.4, 0.6, 0.8], [0.5, 0.9, 0.8], n_resamples=RESAMPLES)
    assert row.p_value == pytest.approx(expected.p_value)
    assert row.delta_ci_low == pytest.approx(expected.ci_low)


def test_a_real_regression_is_significant_and_an_unchanged_row_is_not() -> None:
    table = regression_table(sweep(), baseline="base", n_resamples=RESAMPLES)
    dropped = table.row("step-2", "math", "task_completion")
    same = table.row("step-2", "chat", "task_completion")
    assert dropped is not None
    assert same is not None
    assert dropped.delta == pytest.approx(-0.3)
    assert dropped.delta_ci_high is not None
    assert dropped.delta_ci_high < 0
    assert dropped.significant
    assert same.delta == 0.0
    assert same.p_value == 1.0
    assert not same.significant


def test_the_correction_spans_every_tested_row_pooled_rows_included() -> None:
    table = regression_table(sweep(), baseline="base", n_resamples=RESAMPLES, correction="bh")
    tested = [r for r in table.rows if r.p_value is not None]
    assert {r.cohort for r in tested} == {"math", "chat", "*"}
    assert all(r.checkpoint != "base" for r in tested)
    expected = adjust_p_values([r.p_value for r in tested], "bh")
    assert [r.p_adjusted for r in tested] == pytest.approx(expected)
    assert all(r.significant == ((r.p_adjusted or 1.0) < table.alpha) for r in tested)
    assert any(r.significant for r in tested)
    assert not all(r.significant for r in tested)


def test_pooled_rows_cover_metrics_seen_in_two_cohorts() -> None:
    scores = [
        *sweep(4),
        score("base", "x", 0.5, cohort="math", metric="custom:terse"),
        score("step-1", "x", 0.6, cohort="math", metric="custom:terse"),
    ]
    table = regression_table(scores, baseline="base", n_resamples=RESAMPLES)
    pooled = table.row("base", "*", "task_completion")
    math_row = table.row("base", "math", "task_completion")
    chat_row = table.row("base", "chat", "task_completion")
    assert pooled is not None
    assert math_row is not None
    assert chat_row is not None
    assert pooled.n == math_row.n + chat_row.n == 8
    assert pooled.mean == pytest.approx((math_row.mean or 0) / 2 + (chat_row.mean or 0) / 2)
    assert table.row("base", "*", "custom:terse") is None
    assert table.row("step-1", "math", "custom:terse") is not None


def test_rows_follow_the_sweep_order_with_pooled_rows_last() -> None:
    table = regression_table(sweep(3), baseline="step-1", n_resamples=RESAMPLES)
    assert table.checkpoints == ["base", "step-1", "step-2"]
    assert [(r.cohort, r.metric) for r in table.rows_for("base")] == [
        ("math", "honesty"),
        ("math", "task_completion"),
        ("chat", "honesty"),
        ("chat", "task_completion"),
        ("*", "honesty"),
        ("*", "task_completion"),
    ]
    assert [r.checkpoint for r in table.rows] == ["base"] * 6 + ["step-1"] * 6 + ["step-2"] * 6


def test_the_table_does_not_depend_on_score_order_and_is_deterministic() -> None:
    scores = sweep(8)
    shuffled = list(scores)
    random.Random(4).shuffle(shuffled)
    first = regression_table(scores, baseline="base", n_resamples=RESAMPLES)
    again = regression_table(shuffled, baseline="base", n_resamples=RESAMPLES)
    key = lambda r: (r.checkpoint, r.cohort, r.metric)  # noqa: E731
    assert sorted(first.rows, key=key) == sorted(again.rows, key=key)


def test_records_are_json_ready() -> None:
    table = regression_table(sweep(3), baseline="base", n_resamples=RESAMPLES)
    records = table.to_records()
    assert len(records) == len(table.rows)
    assert records[0]["checkpoint"] == "base"
    assert {"n_error", "p_adjusted", "delta_ci_low", "significant"} <= set(records[0])
    assert json.loads(json.dumps(records)) == records


def test_bad_input_is_refused_with_what_to_do() -> None:
    with pytest.raises(ConfigError, match=r"Baseline 'nope' has no scores\. Checkpoints: base"):
        regression_table([score("base", "a", 0.5)], baseline="nope")
    with pytest.raises(DataError, match="no checkpoint"):
        regression_table([score(None, "a", 0.5)], baseline="base")
    with pytest.raises(DataError, match="two 'task_completion' scores"):
        regression_table([score("base", "a", 0.5), score("base", "a", 0.6)], baseline="base")
    with pytest.raises(ConfigError, match="alpha"):
        regression_table([score("base", "a", 0.5)], baseline="base", alpha=0)


def test_row_changes_lists_flipped_verdicts_regressions_first() -> None:
    scores = [
        score("base", "a", 0.9, passed=True, reason="base ok a"),
        score("base", "b", 0.1, passed=False, reason="base bad b"),
        score("base", "c", 0.9, passed=True),
        score("base", "d", 0.9, passed=True),
        score("base", "e", 0.9, passed=True),
        score("new", "b", 0.8, passed=True, reason="fixed b"),
        score("new", "a", 0.2, passed=False, reason="broke a"),
        score("new", "c", 0.9, passed=True),  # unchanged
        score("new", "d", None, status="error"),  # an error is not a regression
        score("new", "e", 0.2, passed=None),  # no verdict to compare
    ]
    changes = row_changes(scores, baseline="base")
    assert [(c.kind, c.sample_id) for c in changes] == [("regression", "a"), ("fix", "b")]
    regression = changes[0]
    assert regression.checkpoint == "new"
    assert (regression.baseline_value, regression.value) == (0.9, 0.2)
    assert (regression.baseline_reason, regression.reason) == ("base ok a", "broke a")
    assert changes[1].reason == "fixed b"


def test_row_changes_follow_the_sweep_order() -> None:
    scores = [
        score("base", "a", 0.9, passed=True),
        score("z-late", "a", 0.1, passed=False),
        score("a-early", "a", 0.1, passed=False),
    ]
    changes = row_changes(scores, baseline="base")
    assert [c.checkpoint for c in changes] == ["z-late", "a-early"]
