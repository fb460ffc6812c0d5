"""mean_interval, paired_test and adjust_p_values against scipy and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from heldout import ConfigError, DataError
from heldout.analysis import adjust_p_values, mean_interval, paired_test
from heldout.analysis._stats import TestMethod

METHODS: list[TestMethod] = ["bootstrap", "permutation", "wilcoxon"]


def test_mean_interval_of_nothing_is_none() -> None:
    assert mean_interval([]) is None


@pytest.mark.parametrize("values", [[0.7], [0.4, 0.4, 0.4, 0.4]])
def test_mean_interval_of_one_or_equal_values_has_zero_width(values: list[float]) -> None:
    interval = mean_interval(values)
    assert interval is not None
    assert interval.n == len(values)
    assert interval.mean == interval.low == interval.high == values[0]


def test_mean_interval_is_scipys_percentile_bootstrap() -> None:
    values = [0.1, 0.9, 0.5, 0.7, 0.3, 1.0, 0.0, 0.6]
    interval = mean_interval(values, confidence=0.9, n_resamples=2000, seed=7)
    expected = stats.bootstrap(
        (np.array(values),),
        np.mean,
        method="percentile",
        confidence_level=0.9,
        n_resamples=2000,
        rng=np.random.default_rng(7),
    ).confidence_interval
    assert interval is not None
    assert interval.mean == pytest.approx(np.mean(values))
    assert interval.low == pytest.approx(expected.low)
    assert interval.high == pytest.approx(expected.high)
    assert interval.low < interval.mean < interval.high


def test_mean_interval_shrinks_as_prompts_grow() -> None:
    small = mean_interval([0.0, 1.0] * 5, n_resamples=2000)
    large = mean_interval([0.0, 1.0] * 100, n_resamples=2000)
    assert small is not None
    assert large is not None
    assert small.mean == large.mean == 0.5
    assert large.high - large.low < (small.high - small.low) / 2


def test_mean_interval_is_deterministic_given_the_seed() -> None:
    values = [0.2, 0.5, 0.9, 0.4, 0.8]
    assert mean_interval(values, seed=3) == mean_interval(values, seed=3)


def test_mean_interval_rejects_nan_and_bad_confidence() -> None:
    with pytest.raises(DataError, match="finite"):
        mean_interval([0.5, float("nan")])
    with pytest.raises(ConfigError, match="confidence"):
        mean_interval([0.5, 0.6], confidence=1.0)


def _improvement(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    baseline = rng.uniform(0.2, 0.6, size=n)
    return baseline, baseline + 0.2 + rng.normal(0, 0.03, size=n)


@pytest.mark.parametrize("method", METHODS)
def test_a_clear_improvement_has_a_small_p_and_a_positive_interval(method: TestMethod) -> None:
    baseline, candidate = _improvement()
    result = paired_test(baseline, candidate, method=method, n_resamples=2000)
    assert result.n == 30
    assert result.delta == pytest.approx(float(np.mean(candidate - baseline)))
    assert result.ci_low is not None
    assert result.ci_high is not None
    assert result.delta is not None
    assert 0 < result.ci_low < result.delta < result.ci_high
    assert result.p_value is not None
    assert result.p_value < 0.01


@pytest.mark.parametrize("method", METHODS)
def test_no_difference_gives_p_one_without_warnings(method: TestMethod) -> None:
    scores = [0.2, 0.8, 0.5, 1.0]
    result = paired_test(scores, scores, method=method)
    assert (result.n, result.delta, result.ci_low, result.ci_high) == (4, 0.0, 0.0, 0.0)
    assert result.p_value == 1.0


def test_fewer_than_two_pairs_cannot_be_tested() -> None:
    empty = paired_test([], [])
    assert (empty.n, empty.delta, empty.ci_low, empty.p_value) == (0, None, None, None)
    one = paired_test([0.2], [0.5])
    assert one.n == 1
    assert one.delta == pytest.approx(0.3)
    assert one.ci_low == one.ci_high == one.delta
    assert one.p_value is None


def test_permutation_is_exact_on_few_pairs() -> None:
    # Three positive differences: of the 2**3 sign flips only all-plus and all-minus
    # are as extreme as the observed mean, so the two-sided p is 2/8.
    result = paired_test([0.1, 0.2, 0.3], [0.2, 0.4, 0.6], method="permutation")
    assert result.p_value == pytest.approx(0.25)


def test_wilcoxon_p_is_scipys() -> None:
    baseline, candidate = _improvement(12)
    result = paired_test(baseline, candidate, method="wilcoxon")
    assert result.p_value == pytest.approx(stats.wilcoxon(candidate - baseline).pvalue)


def test_delta_interval_is_a_bootstrap_over_paired_differences() -> None:
    baseline, candidate = _improvement(15)
    result = paired_test(baseline, candidate, n_resamples=1500, seed=5)
    expected = stats.bootstrap(
        (candidate - baseline,),
        np.mean,
        method="percentile",
        n_resamples=1500,
        rng=np.random.default_rng(5),
    ).confidence_interval
    assert result.ci_low == pytest.approx(expected.low)
    assert result.ci_high == pytest.approx(expected.high)


def test_bootstrap_p_of_symmetric_differences_is_one() -> None:
    # Mean difference 0: every resample is at least as far from it as 0 is.
    result = paired_test([0.5] * 4, [0.4, 0.6, 0.3, 0.7], method="bootstrap")
    assert result.delta == pytest.approx(0.0)
    assert result.p_value == 1.0


def test_paired_test_is_deterministic_and_checks_lengths() -> None:
    baseline, candidate = _improvement()
    assert paired_test(baseline, candidate, seed=1) == paired_test(baseline, candidate, seed=1)
    with pytest.raises(ConfigError, match="one baseline score per candidate"):
        paired_test([0.1, 0.2], [0.3])
    with pytest.raises(ConfigError, match="Unknown test"):
        paired_test([0.1], [0.2], method="t-test")  # type: ignore[arg-type]


def test_holm_on_a_hand_computed_family() -> None:
    # Sorted 0.01, 0.03, 0.04, 0.2 times 4, 3, 2, 1 = 0.04, 0.09, 0.08, 0.2;
    # made monotone: 0.04, 0.09, 0.09, 0.2.
    adjusted = adjust_p_values([0.01, 0.04, 0.03, 0.2], "holm")
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.2])


def test_holm_caps_at_one() -> None:
    assert adjust_p_values([0.5, 0.6], "holm") == [1.0, 1.0]


def test_bh_on_a_hand_computed_family() -> None:
    # Sorted p times 4/rank: 0.04, 0.06, 0.0533, 0.2; minimum from the top down.
    adjusted = adjust_p_values([0.01, 0.04, 0.03, 0.2], "bh")
    assert adjusted == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])


def test_none_entries_stay_out_of_the_family() -> None:
    assert adjust_p_values([None, 0.01, None, 0.04], "holm") == pytest.approx(
        [None, 0.02, None, 0.04]
    )
    assert adjust_p_values([None, None], "bh") == [None, None]
    assert adjust_p_values([], "holm") == []


def test_adjust_rejects_p_values_outside_zero_one() -> None:
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        adjust_p_values([0.2, 1.5])
