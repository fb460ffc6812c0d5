"""The jury: majority, mean and probability average, jurors that error left out and
listed, a quorum, and the agreement between jurors."""

from __future__ import annotations

import pytest

from heldout import ConfigError, DataError
from heldout.analysis import cohen_kappa, jury, krippendorff_alpha
from heldout.data import JudgeVerdict

RESAMPLES = 200


def verdict(
    item: str,
    label: str | None = None,
    *,
    score: float | None = None,
    probability: float | None = None,
    error: str | None = None,
) -> JudgeVerdict:
    if error is not None:
        return JudgeVerdict(id=item, axis="criteria", status="error", error=error)
    return JudgeVerdict(id=item, axis="criteria", label=label, score=score, probability=probability)


def test_majority_of_three_with_an_error_left_out_not_counted_as_fail() -> None:
    result = jury(
        {
            "a": [verdict("x", "pass"), verdict("y", "fail"), verdict("z", "pass")],
            "b": [verdict("x", "pass"), verdict("y", "fail"), verdict("z", error="timeout")],
            "c": [verdict("x", "fail"), verdict("y", "pass"), verdict("z", "pass")],
        },
        n_resamples=RESAMPLES,
    )
    by_id = {v.id: v for v in result.verdicts}
    assert (by_id["x"].label, by_id["x"].score) == ("pass", pytest.approx(2 / 3))
    assert (by_id["y"].label, by_id["y"].score) == ("fail", pytest.approx(1 / 3))
    z = by_id["z"]
    assert (z.status, z.label, z.score) == ("ok", "pass", 1.0)  # 2 of 2 answering jurors
    assert z.errors == {"b": "timeout"}
    assert z.votes == {"a": "pass", "c": "pass"}
    assert "2 of 3 jurors" in z.reason
    assert "left out: b" in z.reason
    assert result.quorum == 2


def test_a_tied_majority_says_tie() -> None:
    result = jury({"a": [verdict("x", "pass")], "b": [verdict("x", "fail")]}, n_resamples=RESAMPLES)
    (v,) = result.verdicts
    assert (v.label, v.score) == ("tie", 0.5)


def test_majority_over_categories_has_no_score() -> None:
    result = jury(
        {
            "a": [verdict("x", "A")],
            "b": [verdict("x", "A")],
            "c": [verdict("x", "B")],
        },
        n_resamples=RESAMPLES,
    )
    (v,) = result.verdicts
    assert (v.label, v.score) == ("A", None)


def test_below_quorum_is_an_error_that_lists_why() -> None:
    result = jury(
        {
            "a": [verdict("x", "pass")],
            "b": [verdict("x", error="rate limited")],
            "c": [],  # never judged x
        },
        n_resamples=RESAMPLES,
    )
    (v,) = result.verdicts
    assert (v.status, v.label, v.score) == ("error", None, None)
    assert v.errors == {"b": "rate limited", "c": "no verdict"}
    assert "1 of 3 jurors answered, fewer than the quorum of 2" in v.reason
    relaxed = jury(
        {"a": [verdict("x", "pass")], "b": [verdict("x", error="rate limited")]},
        quorum=1,
        n_resamples=RESAMPLES,
    )
    assert relaxed.verdicts[0].status == "ok"


def test_mean_score_and_probability_average() -> None:
    jurors = {
        "a": [verdict("x", "pass", score=0.9, probability=0.8)],
        "b": [verdict("x", "fail", score=0.2, probability=0.4)],
        "c": [verdict("x", "pass", score=0.7, probability=0.9)],
    }
    mean = jury(jurors, method="mean", n_resamples=RESAMPLES).verdicts[0]
    assert (mean.score, mean.label) == (pytest.approx(0.6), "pass")
    prob = jury(jurors, method="probability", threshold=0.75, n_resamples=RESAMPLES).verdicts[0]
    assert (prob.score, prob.label) == (pytest.approx(0.7), "fail")
    assert "mean probability 0.700" in prob.reason


def test_missing_scores_or_probabilities_are_refused_not_guessed() -> None:
    jurors = {"a": [verdict("x", "pass", score=0.9)], "b": [verdict("x", "pass")]}
    with pytest.raises(DataError, match=r"juror 'b' gave item 'x'.*no score"):
        jury(jurors, method="mean")
    with pytest.raises(DataError, match=r"juror 'a' gave item 'x'.*no probability.*'mean'"):
        jury(jurors, method="probability")


def test_the_jurors_agreement_is_kappa_for_two_and_alpha_for_more() -> None:
    a = ["pass", "pass", "fail", "fail", "pass", "fail"]
    b = ["pass", "fail", "fail", "fail", "pass", "pass"]
    c = ["pass", "pass", "fail", "pass", "pass", "fail"]
    two = jury(
        {
            "a": [verdict(f"i{i}", x) for i, x in enumerate(a)],
            "b": [verdict(f"i{i}", x) for i, x in enumerate(b)],
        },
        n_resamples=RESAMPLES,
    )
    (row,) = two.agreement.rows
    assert row.kappas[0].kappa == pytest.approx(cohen_kappa(a, b))
    assert row.alpha is None
    three = jury(
        {
            name: [verdict(f"i{i}", x) for i, x in enumerate(labels)]
            for name, labels in (("a", a), ("b", b), ("c", c))
        },
        n_resamples=RESAMPLES,
    )
    ratings = [list(r) for r in zip(a, b, c, strict=True)]
    assert three.agreement.rows[0].alpha == pytest.approx(krippendorff_alpha(ratings))


def test_the_jury_is_one_more_judge_to_compare() -> None:
    result = jury({"a": [verdict("x", "pass")], "b": [verdict("x", "pass")]}, n_resamples=RESAMPLES)
    (as_judge,) = result.as_verdicts("panel")
    assert (as_judge.judge, as_judge.label, as_judge.score, as_judge.status) == (
        "panel",
        "pass",
        1.0,
        "ok",
    )


def test_jury_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="two or more jurors"):
        jury({"a": [verdict("x", "pass")]})
    with pytest.raises(ConfigError, match="Unknown jury method 'median'"):
        jury({"a": [], "b": []}, method="median")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="quorum must lie between 1 and 2"):
        jury({"a": [], "b": []}, quorum=3)
