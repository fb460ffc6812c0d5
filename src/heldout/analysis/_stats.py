"""The statistics behind a regression table: means with intervals, paired tests, corrections.

Every interval is a percentile bootstrap over prompts (``scipy.stats.bootstrap``),
and every call is deterministic given its ``seed``. Degenerate inputs that scipy
warns about or rejects (no values, one value, all-equal values, all-zero
differences) are answered here directly, because the test suite turns warnings
into errors and a report should never crash on a tiny cohort.

Why percentile and not BCa: judge scores are bounded, often binary and often
near-constant (a cohort that nearly always passes). On such data BCa's jackknife
acceleration is undefined or unstable (scipy emits ``DegenerateDataWarning`` and
NaN bounds), while the percentile interval stays defined and is adequate at the
cohort sizes (tens to hundreds of prompts) a held-out eval uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from heldout._errors import ConfigError, DataError

TestMethod = Literal["bootstrap", "permutation", "wilcoxon"]
Correction = Literal["holm", "bh"]
Values = Sequence[float] | npt.NDArray[np.float64]

DEFAULT_RESAMPLES = 9999
"""Resamples per bootstrap or permutation test: enough for a stable 95% interval."""

_MAX_BATCH_CELLS = 1_000_000
"""Resampled values held in memory at once (8 MB), so big cohorts do not blow up RAM."""

_FLOAT_NOISE = 1e-12
"""Differences of means below this are rounding, not signal (scores live on [0, 1])."""

_TEST_METHODS: tuple[TestMethod, ...] = ("bootstrap", "permutation", "wilcoxon")


@dataclass(frozen=True)
class MeanInterval:
    """A mean with its bootstrap confidence interval.

    Attributes:
        n: The number of values.
        mean: Their mean.
        low: The interval's lower bound.
        high: The interval's upper bound.
        confidence: The interval's confidence level, e.g. 0.95.
    """

    n: int
    mean: float
    low: float
    high: float
    confidence: float


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of a candidate against a baseline on the same prompts.

    Attributes:
        n: The number of pairs.
        delta: The mean of ``candidate - baseline``; None without pairs.
        ci_low: The lower bound of the paired-bootstrap interval of ``delta``.
        ci_high: Its upper bound.
        p_value: The two-sided p-value of "no difference"; None with fewer than two
            pairs, where no test is possible.
        method: The test that gave ``p_value``.
        confidence: The interval's confidence level.
    """

    n: int
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    method: TestMethod
    confidence: float


def mean_interval(
    values: Values,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> MeanInterval | None:
    """The mean of ``values`` and its percentile-bootstrap confidence interval.

    Each value is one prompt's score; the bootstrap resamples prompts.

    Args:
        values: The ``ok`` scores (errors must already be left out).
        confidence: The confidence level, in (0, 1).
        n_resamples: Bootstrap resamples.
        seed: Seed of the resampling; the same inputs and seed give the same interval.

    Returns:
        None when ``values`` is empty. With one value, or all values equal, the
        bootstrap distribution is a single point, so the interval has zero width:
        read ``n`` before trusting a narrow interval.

    Raises:
        ConfigError: ``confidence`` or ``n_resamples`` is out of range.
        DataError: A value is NaN or infinite.
    """
    _check_settings(confidence, n_resamples)
    data = _as_array(values, "values")
    if data.size == 0:
        return None
    mean = float(np.mean(data))
    if data.size == 1 or np.all(data == data[0]):
        return MeanInterval(data.size, mean, mean, mean, confidence)
    result = stats.bootstrap(
        (data,),
        _mean,
        vectorized=True,
        method="percentile",
        confidence_level=confidence,
        n_resamples=n_resamples,
        batch=_batch(data.size),
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return MeanInterval(data.size, mean, float(low), float(high), confidence)


def paired_test(
    baseline: Values,
    candidate: Values,
    *,
    method: TestMethod = "permutation",
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedTest:
    """Compare ``candidate`` with ``baseline`` on the same prompts, pair by pair.

    ``baseline[i]`` and ``candidate[i]`` must be scores of the same prompt. The
    interval of the mean difference always comes from a paired bootstrap over
    prompts (resampling the differences); ``method`` only picks the p-value:

    - ``permutation`` (the default): a sign-flip permutation test of the mean
      difference, exact when ``2**n <= n_resamples``. It tests the very statistic the
      table reports, assumes nothing about the score distribution and copes with the
      ties and zeros that binary judge scores produce.
    - ``bootstrap``: the share of the null-centred bootstrap distribution at least as
      far from zero as the observed delta. Anti-conservative on small n.
    - ``wilcoxon``: the Wilcoxon signed-rank test (zeros dropped); it tests whether
      differences are symmetric about zero, a median-like question, not the mean.

    Args:
        baseline: The baseline's scores.
        candidate: The candidate's scores on the same prompts, in the same order.
        method: How to compute the p-value; see above.
        confidence: The interval's confidence level, in (0, 1).
        n_resamples: Bootstrap and permutation resamples.
        seed: Seed of the resampling.

    Returns:
        The comparison. All-zero differences give ``delta == 0``, a zero-width
        interval and ``p_value == 1`` without calling scipy; one pair gives its
        difference with a zero-width interval and no p-value; no pairs give Nones.

    Raises:
        ConfigError: A setting is out of range, or the inputs differ in length.
        DataError: A value is NaN or infinite.
    """
    _check_settings(confidence, n_resamples)
    if method not in _TEST_METHODS:
        raise ConfigError(f"Unknown test {method!r}. Available: {', '.join(_TEST_METHODS)}")
    base, cand = _as_array(baseline, "baseline"), _as_array(candidate, "candidate")
    if base.shape != cand.shape:
        raise ConfigError(
            f"paired_test needs one baseline score per candidate score; "
            f"got {base.size} and {cand.size}"
        )
    diffs = cand - base
    n = int(diffs.size)
    if n == 0:
        return PairedTest(0, None, None, None, None, method, confidence)
    delta = float(np.mean(diffs))
    if n == 1:
        return PairedTest(1, delta, delta, delta, None, method, confidence)
    if not np.any(diffs):
        return PairedTest(n, 0.0, 0.0, 0.0, 1.0, method, confidence)
    rng = np.random.default_rng(seed)
    low, high, boot = _delta_interval(diffs, confidence, n_resamples, rng)
    if method == "bootstrap":
        p_value = _bootstrap_p(boot, delta)
    elif method == "permutation":
        p_value = _permutation_p(base, cand, n_resamples, rng)
    else:
        p_value = float(stats.wilcoxon(diffs).pvalue)
    return PairedTest(n, delta, low, high, p_value, method, confidence)


def adjust_p_values(
    p_values: Sequence[float | None], method: Correction = "holm"
) -> list[float | None]:
    """Adjust a family of p-values for multiple comparisons.

    - ``holm``: Holm's step-down correction; controls the family-wise error rate (the
      chance of any false "significant") under any dependence between the tests.
    - ``bh``: Benjamini-Hochberg (``scipy.stats.false_discovery_control``); controls
      the expected share of false discoveries, valid for independent or positively
      dependent tests. Less strict than Holm on large tables.

    Args:
        p_values: The raw p-values. None entries (untested rows) are not part of the
            family and stay None.
        method: ``holm`` or ``bh``.

    Returns:
        The adjusted p-values, in the order given.

    Raises:
        ConfigError: ``method`` is unknown.
        DataError: A p-value is outside [0, 1].
    """
    if method not in ("holm", "bh"):
        raise ConfigError(f"Unknown correction {method!r}. Available: holm, bh")
    present = [i for i, p in enumerate(p_values) if p is not None]
    raw = np.array([p_values[i] for i in present], dtype=np.float64)
    if np.any((raw < 0) | (raw > 1) | np.isnan(raw)):
        raise DataError(f"p-values must lie in [0, 1]; got {list(p_values)!r}")
    adjusted: list[float | None] = [None] * len(p_values)
    if raw.size == 0:
        return adjusted
    fixed = _holm(raw) if method == "holm" else stats.false_discovery_control(raw, method="bh")
    for i, p in zip(present, fixed, strict=True):
        adjusted[i] = float(p)
    return adjusted


def _holm(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Holm step-down: the i-th smallest p times (m - i), made monotone, capped at 1."""
    order = np.argsort(p, kind="stable")
    m = p.size
    scaled = (m - np.arange(m)) * p[order]
    out = np.empty_like(p)
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def _delta_interval(
    diffs: npt.NDArray[np.float64],
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> tuple[float, float, npt.NDArray[np.float64]]:
    """The percentile-bootstrap interval of the mean difference, and its distribution."""
    if np.all(diffs == diffs[0]):
        point = float(diffs[0])
        return point, point, np.full(n_resamples, point)
    result = stats.bootstrap(
        (diffs,),
        _mean,
        vectorized=True,
        method="percentile",
        confidence_level=confidence,
        n_resamples=n_resamples,
        batch=_batch(diffs.size),
        rng=rng,
    )
    low, high = result.confidence_interval
    return float(low), float(high), np.asarray(result.bootstrap_distribution, dtype=np.float64)


def _bootstrap_p(boot: npt.NDArray[np.float64], delta: float) -> float:
    """Two-sided p from the bootstrap distribution shifted to the null (mean 0).

    The +1 in numerator and denominator counts the observed sample itself, so the
    p-value is never exactly 0. Scores live on [0, 1], so an absolute tolerance keeps
    rounding noise (a delta of 1e-17 for a true 0) from deciding the count.
    """
    extreme = np.count_nonzero(np.abs(boot - delta) >= abs(delta) - _FLOAT_NOISE)
    return float(min(1.0, (extreme + 1) / (boot.size + 1)))


def _permutation_p(
    base: npt.NDArray[np.float64],
    cand: npt.NDArray[np.float64],
    n_resamples: int,
    rng: np.random.Generator,
) -> float:
    """Sign-flip test: under "no difference", swapping a pair's two scores changes nothing."""
    result = stats.permutation_test(
        (base, cand),
        _mean_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        batch=_batch(base.size),
        rng=rng,
    )
    return float(min(1.0, result.pvalue))


def _mean(x: npt.NDArray[np.float64], axis: int = -1) -> npt.NDArray[np.float64]:
    return np.asarray(np.mean(x, axis=axis), dtype=np.float64)


def _mean_difference(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], axis: int = -1
) -> npt.NDArray[np.float64]:
    return np.asarray(np.mean(y - x, axis=axis), dtype=np.float64)


def _batch(n: int) -> int:
    return max(1, _MAX_BATCH_CELLS // max(n, 1))


def _as_array(values: Values, name: str) -> npt.NDArray[np.float64]:
    data = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(data)):
        raise DataError(f"{name}: scores must be finite numbers; found NaN or infinity")
    return data


def _check_settings(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie strictly between 0 and 1; got {confidence}")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be at least 1; got {n_resamples}")
