"""Cohen's kappa and Krippendorff's alpha against published and hand-computed values,
and their bootstrap intervals."""

from __future__ import annotations

import math

import pytest

from heldout import ConfigError, DataError
from heldout.analysis import (
    alpha_interval,
    cohen_kappa,
    disagreement_rate,
    kappa_interval,
    krippendorff_alpha,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the reliability
# data matrix of 4 observers and 12 units with missing data; one row per unit here.
# Unit 12 has a single value, so it is not pairable and does not count.
RELIABILITY = [
    [1, 1, None, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [None, 5, 5, 5],
    [None, None, 1, 1],
    [None, 3, None, None],
]


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_alpha_matches_krippendorffs_worked_example(level: str, published: float) -> None:
    alpha = krippendorff_alpha(RELIABILITY, level=level)  # type: ignore[arg-type]
    assert alpha is not None
    assert round(alpha, 3) == published


def test_nominal_alpha_of_the_worked_example_is_exact() -> None:
    # 1 - (n - 1) * D_o / D_e with n = 40 pairable values: 0.743421...
    assert krippendorff_alpha(RELIABILITY) == pytest.approx(0.743421052631579, abs=1e-12)


def test_alpha_of_krippendorffs_two_observer_examples() -> None:
    # Binary data, two observers, ten units: alpha = 0.095.
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert round(krippendorff_alpha(list(zip(a, b, strict=True))) or 0, 3) == 0.095
    # Nominal data, two observers, twelve units, no missing values: alpha = 0.692.
    c = list("aabbdcccedda")
    d = list("babbbccceddd")
    assert round(krippendorff_alpha(list(zip(c, d, strict=True))) or 0, 3) == 0.692


def test_nan_counts_as_missing_like_none() -> None:
    with_nan = [[math.nan if v is None else v for v in row] for row in RELIABILITY]
    assert krippendorff_alpha(with_nan, level="interval") == krippendorff_alpha(
        RELIABILITY, level="interval"
    )


def test_alpha_is_none_without_variation_or_pairs() -> None:
    assert krippendorff_alpha([["a", "a"], ["a", "a"]]) is None
    assert krippendorff_alpha([[1, None], [None, 2]], level="interval") is None
    assert krippendorff_alpha([]) is None


def test_interval_alpha_takes_continuous_scores() -> None:
    ratings = [[i / 400, i / 400 + 0.001] for i in range(300)]
    alpha = krippendorff_alpha(ratings, level="interval")
    assert alpha is not None
    assert alpha > 0.99


def test_ordinal_alpha_refuses_a_continuous_scale() -> None:
    ratings = [[i / 400, i / 400 + 0.001] for i in range(300)]
    with pytest.raises(DataError, match="Use level='interval'"):
        krippendorff_alpha(ratings, level="ordinal")


def test_alpha_errors_are_named() -> None:
    with pytest.raises(ConfigError, match="Unknown level 'fuzzy'"):
        krippendorff_alpha(RELIABILITY, level="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="one entry per judge"):
        krippendorff_alpha([[1, 2], [1]])
    with pytest.raises(DataError, match="needs numbers"):
        krippendorff_alpha([["a", "b"], ["a", "a"]], level="interval")


def test_kappa_of_a_two_by_two_table_computed_by_hand() -> None:
    # 50 items: both yes 20, A yes / B no 5, A no / B yes 10, both no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_weighted_kappa_computed_by_hand() -> None:
    # Pairs (1,2), (2,2), (3,3), (3,1): A's margins 1,1,2; B's margins 1,2,1; n = 4.
    # Unweighted: observed 2 disagreements, expected 4 - (1 + 2 + 2) / 4 = 11/4 -> 3/11.
    # Linear (|i-j| / 2): observed 0.5 + 1 = 1.5, expected 7/4 -> 1 - 6/7 = 1/7.
    # Quadratic ((i-j)^2 / 4): observed 0.25 + 1 = 1.25, expected 5/4 -> 0.
    a, b = [1, 2, 3, 3], [2, 2, 3, 1]
    assert cohen_kappa(a, b) == pytest.approx(3 / 11)
    assert cohen_kappa(a, b, weights="linear") == pytest.approx(1 / 7)
    assert cohen_kappa(a, b, weights="quadratic") == pytest.approx(0.0, abs=1e-12)


def test_weighted_kappa_follows_the_given_category_order() -> None:
    a, b = ["low", "mid", "high", "high"], ["mid", "mid", "high", "low"]
    ordered = cohen_kappa(a, b, weights="linear", categories=["low", "mid", "high"])
    assert ordered == pytest.approx(1 / 7)
    with pytest.raises(DataError, match="not one of the categories"):
        cohen_kappa(a, b, categories=["low", "mid"])


def test_kappa_is_none_when_undefined_and_checks_its_inputs() -> None:
    assert cohen_kappa(["pass"] * 5, ["pass"] * 5) is None
    assert cohen_kappa([], []) is None
    with pytest.raises(ConfigError, match="one label per item"):
        cohen_kappa(["a"], ["a", "b"])
    with pytest.raises(ConfigError, match="Unknown kappa weights"):
        cohen_kappa(["a"], ["a"], weights="cubic")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="got None"):
        cohen_kappa(["a", None], ["a", "b"])


def test_perfect_and_opposite_agreement() -> None:
    assert cohen_kappa(["p", "f", "p", "f"], ["p", "f", "p", "f"]) == pytest.approx(1.0)
    assert cohen_kappa(["p", "f", "p", "f"], ["f", "p", "f", "p"]) == pytest.approx(-1.0)


def test_disagreement_rate() -> None:
    assert disagreement_rate([["p", "p"], ["p", "f"], ["f", "f"], ["p", "p", "f"]]) == 0.5
    assert disagreement_rate([]) is None


def test_intervals_cover_the_estimate_and_are_seeded() -> None:
    a = ["p"] * 30 + ["f"] * 30
    b = ["p"] * 25 + ["f"] * 5 + ["f"] * 22 + ["p"] * 8
    first = kappa_interval(a, b, n_resamples=500, seed=1)
    again = kappa_interval(a, b, n_resamples=500, seed=1)
    other = kappa_interval(a, b, n_resamples=500, seed=2)
    assert first == again
    assert first != other
    assert first.value == cohen_kappa(a, b)
    assert first.low is not None
    assert first.high is not None
    assert first.low < first.value < first.high
    assert first.n == 60
    alpha = alpha_interval(RELIABILITY, n_resamples=500, seed=0)
    assert alpha.low is not None
    assert alpha.high is not None
    assert alpha.low <= (alpha.value or 0) <= alpha.high


def test_intervals_of_constant_or_tiny_data_do_not_crash() -> None:
    same = kappa_interval(["p"] * 10, ["p"] * 10, n_resamples=100)
    assert (same.value, same.low, same.high) == (None, None, None)
    one = alpha_interval([[1, 1]], level="interval", n_resamples=100)
    assert one.value is None
    with pytest.raises(ConfigError, match="confidence"):
        kappa_interval(["a", "b"], ["a", "b"], confidence=1.5)
    with pytest.raises(ConfigError, match="n_resamples"):
        kappa_interval(["a", "b"], ["a", "b"], n_resamples=0)
