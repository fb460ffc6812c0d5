"""judge_agreement: per cohort and axis, errors left out and counted, the items judges
disagree on with their reasons."""

from __future__ import annotations

import pytest

from heldout import ConfigError, DataError
from heldout.analysis import (
    cohen_kappa,
    judge_agreement,
    krippendorff_alpha,
)
from heldout.data import JudgeVerdict

RESAMPLES = 300


def v(
    item: str,
    label: str | None,
    *,
    cohort: str = "help",
    axis: str = "criteria",
    score: float | None = None,
    reason: str = "",
    error: str | None = None,
) -> JudgeVerdict:
    if error is not None:
        return JudgeVerdict(id=item, cohort=cohort, axis=axis, status="error", error=error)
    return JudgeVerdict(id=item, cohort=cohort, axis=axis, label=label, score=score, reason=reason)


def test_two_judges_per_cohort_and_pooled_with_errors_left_out() -> None:
    training = [
        v("h1", "pass", reason="helpful"),
        v("h2", "pass"),
        v("h3", "fail"),
        v("h4", "pass", reason="says yes"),
        v("h5", "pass"),
        v("s1", "fail", cohort="safe"),
        v("s2", "pass", cohort="safe"),
        v("s3", "pass", cohort="safe"),
    ]
    evaluated = [
        v("h1", "pass"),
        v("h2", "pass"),
        v("h3", "fail"),
        v("h4", "fail", reason="misses the point"),
        v("h5", None, error="timeout"),
        v("s1", "fail", cohort="safe"),
        v("s2", "pass", cohort="safe"),
        # s3 never judged by the eval judge
    ]
    report = judge_agreement({"training": training, "eval": evaluated}, n_resamples=RESAMPLES)
    assert [(r.cohort, r.axis) for r in report.rows] == [
        ("help", "criteria"),
        ("safe", "criteria"),
        ("*", "criteria"),
    ]
    help_row = report.row("help", "criteria")
    assert help_row is not None
    assert (help_row.n, help_row.n_error, help_row.n_missing) == (4, 1, 0)
    assert help_row.errors == {"training": 0, "eval": 1}
    assert help_row.disagreement_rate == pytest.approx(0.25)
    (pair,) = help_row.kappas
    assert pair.judges == ("training", "eval")
    expected = cohen_kappa(["pass", "pass", "fail", "pass"], ["pass", "pass", "fail", "fail"])
    assert pair.kappa == pytest.approx(expected)
    assert help_row.alpha is None  # two judges: kappa, not alpha
    safe = report.row("safe", "criteria")
    assert safe is not None
    assert (safe.n, safe.n_error, safe.n_missing) == (2, 0, 1)
    pooled = report.row("*", "criteria")
    assert pooled is not None
    assert (pooled.n, pooled.n_error, pooled.n_missing) == (6, 1, 1)
    assert pooled.disagreement_rate == pytest.approx(1 / 6)
    (item,) = report.disagreements
    assert (item.id, item.cohort, item.axis) == ("h4", "help", "criteria")
    assert item.labels == {"training": "pass", "eval": "fail"}
    assert item.reasons == {"training": "says yes", "eval": "misses the point"}


def test_three_judges_get_alpha_and_a_kappa_per_pair() -> None:
    labels = {
        "a": ["p", "p", "f", "f", "p", "f", "p", "p"],
        "b": ["p", "f", "f", "f", "p", "f", "p", "f"],
        "c": ["p", "p", "f", "p", "p", "f", "f", "p"],
    }
    verdicts = {
        judge: [v(f"i{i}", label) for i, label in enumerate(row)] for judge, row in labels.items()
    }
    report = judge_agreement(verdicts, n_resamples=RESAMPLES)
    (row,) = report.rows
    assert [k.judges for k in row.kappas] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert row.kappas[0].kappa == pytest.approx(cohen_kappa(labels["a"], labels["b"]))
    ratings = [list(items) for items in zip(*labels.values(), strict=True)]
    assert row.alpha == pytest.approx(krippendorff_alpha(ratings))
    assert row.alpha_ci_low is not None
    assert row.alpha_ci_high is not None
    assert row.alpha_ci_low <= (row.alpha or 0) <= row.alpha_ci_high
    # Items 1, 3, 6 and 7 split the judges.
    assert row.disagreement_rate == pytest.approx(4 / 8)
    assert [d.id for d in report.disagreements] == ["i1", "i3", "i6", "i7"]


def test_interval_alpha_uses_the_scores() -> None:
    scores = {"a": [0.9, 0.2, 0.6, 0.1], "b": [0.8, 0.3, 0.7, 0.1], "c": [1.0, 0.1, 0.5, 0.2]}
    verdicts = {
        j: [v(f"i{i}", "pass" if s >= 0.5 else "fail", score=s) for i, s in enumerate(row)]
        for j, row in scores.items()
    }
    report = judge_agreement(verdicts, level="interval", n_resamples=RESAMPLES)
    ratings = [list(items) for items in zip(*scores.values(), strict=True)]
    assert report.rows[0].alpha == pytest.approx(krippendorff_alpha(ratings, level="interval"))
    verdicts["c"][0] = v("i0", "pass")  # a label without a score
    with pytest.raises(DataError, match=r"gave item 'i0'.*no score"):
        judge_agreement(verdicts, level="interval", n_resamples=RESAMPLES)


def test_agreement_needs_two_judges_and_one_verdict_per_item() -> None:
    with pytest.raises(ConfigError, match="two or more judges"):
        judge_agreement({"a": [v("x", "pass")]})
    with pytest.raises(DataError, match="judge 'a' has two verdicts on item 'x'"):
        judge_agreement({"a": [v("x", "pass"), v("x", "fail")], "b": [v("x", "pass")]})


def test_a_cohort_with_only_errors_has_no_numbers_but_its_counts() -> None:
    report = judge_agreement(
        {"a": [v("x", None, error="timeout")], "b": [v("x", "pass")]}, n_resamples=RESAMPLES
    )
    (row,) = report.rows
    assert (row.n, row.n_error, row.disagreement_rate, row.kappas[0].kappa) == (0, 1, None, None)
