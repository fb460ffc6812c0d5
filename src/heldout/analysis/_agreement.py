"""Agreement coefficients: Cohen's kappa, Krippendorff's alpha, with bootstrap intervals.

``cohen_kappa`` compares two judges on the same items; ``krippendorff_alpha`` any
number of judges, with missing values, on a nominal, ordinal, interval or ratio
scale. Both return None where the coefficient is undefined (no items, or every
judgment the same value: no variation to agree on), never a made-up 0 or NaN.

Intervals resample items (units) with replacement: percentile bootstrap, seeded.
Each coefficient is computed from per-item contributions (a confusion or
coincidence matrix), so one resample is a weighted sum of items, not a rebuild of
the data. Resamples where the coefficient is undefined are left out of the
percentiles; with fewer than half of them defined the interval is None.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from heldout._errors import ConfigError, DataError

Level = Literal["nominal", "ordinal", "interval", "ratio"]
KappaWeights = Literal["linear", "quadratic"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Statistic = Callable[[FloatArray], float | None]
"""A coefficient as a function of item weights (how often each item is drawn)."""

LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")
AGREEMENT_RESAMPLES = 2000
"""Bootstrap resamples per agreement interval: each is a Python-level step, so fewer
than the 9999 of the regression table; enough for a stable 95% percentile interval."""

_MAX_ORDINAL_VALUES = 200
"""Ordinal and ratio alpha build a values x values matrix: they are for rating scales."""


@dataclass(frozen=True)
class AgreementEstimate:
    """A coefficient with its bootstrap interval.

    Attributes:
        value: The coefficient on the items given; None when undefined.
        low: The interval's lower bound; None when too few resamples are defined.
        high: Its upper bound.
        n: The number of items.
    """

    value: float | None
    low: float | None
    high: float | None
    n: int


def cohen_kappa(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    *,
    weights: KappaWeights | None = None,
    categories: Sequence[Hashable] | None = None,
) -> float | None:
    """Cohen's kappa between two judges' labels on the same items.

    Args:
        a: The first judge's label of each item.
        b: The second judge's label of each item, in the same order.
        weights: None for plain (nominal) kappa; ``linear`` or ``quadratic`` for
            weighted kappa, where labels far apart on the ordered scale disagree more.
        categories: The scale in order, for weighted kappa (default: the labels
            sorted); labels outside it are an error.

    Returns:
        ``1 - observed / expected`` disagreement; None when there are no items or the
        expected disagreement is 0 (both judges gave one and the same label throughout).

    Raises:
        ConfigError: Unknown ``weights``, or ``a`` and ``b`` differ in length.
        DataError: A label is missing (None) or not in ``categories``.
    """
    return kappa_statistic(a, b, weights=weights, categories=categories)(_ones(len(a)))


def kappa_interval(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    *,
    weights: KappaWeights | None = None,
    categories: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
    n_resamples: int = AGREEMENT_RESAMPLES,
    seed: int = 0,
) -> AgreementEstimate:
    """:func:`cohen_kappa` with a percentile-bootstrap interval over items."""
    statistic = kappa_statistic(a, b, weights=weights, categories=categories)
    return bootstrap(statistic, len(a), confidence=confidence, n_resamples=n_resamples, seed=seed)


def krippendorff_alpha(
    ratings: Sequence[Sequence[Any]], *, level: Level = "nominal"
) -> float | None:
    """Krippendorff's alpha of items x judges ratings, missing values allowed.

    Args:
        ratings: One row per item, one column per judge; None (or NaN) where a judge
            gave no rating. Items with fewer than two ratings cannot be paired and
            are left out, as Krippendorff prescribes.
        level: ``nominal`` (categories), ``ordinal`` (ranks: only the order of the
            values counts), ``interval`` (differences count) or ``ratio``.

    Returns:
        ``1 - observed / expected`` disagreement; None when fewer than two pairable
        values exist or every value is the same.

    Raises:
        ConfigError: Unknown ``level``, or rows of different lengths.
        DataError: A value is not a number at a numeric level, or an ordinal or ratio
            scale has more than 200 distinct values (use ``interval``).
    """
    return alpha_statistic(ratings, level=level)(_ones(len(ratings)))


def alpha_interval(
    ratings: Sequence[Sequence[Any]],
    *,
    level: Level = "nominal",
    confidence: float = 0.95,
    n_resamples: int = AGREEMENT_RESAMPLES,
    seed: int = 0,
) -> AgreementEstimate:
    """:func:`krippendorff_alpha` with a percentile-bootstrap interval over items."""
    statistic = alpha_statistic(ratings, level=level)
    return bootstrap(
        statistic, len(ratings), confidence=confidence, n_resamples=n_resamples, seed=seed
    )


def disagreement_rate(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    """The share of items whose judges did not all give the same label.

    Args:
        ratings: One row per item, one label per judge (no missing values).

    Returns:
        The share in [0, 1]; None without items.
    """
    return rate_statistic(ratings)(_ones(len(ratings)))


def rate_statistic(ratings: Sequence[Sequence[Hashable]]) -> Statistic:
    """The disagreement rate as a function of item weights."""
    split = np.array([len(set(row)) > 1 for row in ratings], dtype=np.float64)

    def rate(weights: FloatArray) -> float | None:
        total = float(weights.sum())
        return None if total == 0 else _dot(weights, split) / total

    return rate


def kappa_statistic(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    *,
    weights: KappaWeights | None = None,
    categories: Sequence[Hashable] | None = None,
) -> Statistic:
    """Cohen's kappa as a function of item weights; see :func:`cohen_kappa`."""
    if len(a) != len(b):
        raise ConfigError(f"kappa needs one label per item from each judge; got {len(a)}, {len(b)}")
    if weights not in (None, "linear", "quadratic"):
        raise ConfigError(f"Unknown kappa weights {weights!r}. Available: linear, quadratic")
    scale = list(categories) if categories is not None else _sorted_labels([*a, *b])
    code = {label: i for i, label in enumerate(scale)}
    k = len(scale)
    cells = np.array(
        [_code(code, x) * k + _code(code, y) for x, y in zip(a, b, strict=True)], dtype=np.int64
    )
    grid = np.arange(k, dtype=np.float64)
    distance = np.abs(grid[:, None] - grid[None, :]) / max(k - 1, 1)
    penalty = {
        None: (distance > 0).astype(np.float64),
        "linear": distance,
        "quadratic": distance**2,
    }[weights]

    def kappa(item_weights: FloatArray) -> float | None:
        confusion = np.bincount(cells, weights=item_weights, minlength=k * k).reshape(k, k)
        n = confusion.sum()
        if n == 0:
            return None
        expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / n
        expected_penalty = float((penalty * expected).sum())
        if expected_penalty <= 0:
            return None
        return 1.0 - float((penalty * confusion).sum()) / expected_penalty

    return kappa


def alpha_statistic(ratings: Sequence[Sequence[Any]], *, level: Level = "nominal") -> Statistic:
    """Krippendorff's alpha as a function of item weights; see :func:`krippendorff_alpha`."""
    if level not in LEVELS:
        raise ConfigError(f"Unknown level {level!r}. Available: {', '.join(LEVELS)}")
    widths = {len(row) for row in ratings}
    if len(widths) > 1:
        raise ConfigError("every item needs one entry per judge (None where missing)")
    units = [[value for value in row if not _missing(value)] for row in ratings]
    if level == "interval":
        return _interval_alpha(units)
    return _coincidence_alpha(units, level)


def bootstrap(
    statistic: Statistic,
    n_items: int,
    *,
    confidence: float = 0.95,
    n_resamples: int = AGREEMENT_RESAMPLES,
    seed: int = 0,
) -> AgreementEstimate:
    """A statistic of items with its percentile-bootstrap interval.

    Args:
        statistic: The statistic as a function of item weights.
        n_items: How many items there are.
        confidence: The interval's confidence level, in (0, 1).
        n_resamples: Bootstrap resamples.
        seed: The resampling seed; the same seed and items give the same interval.

    Raises:
        ConfigError: ``confidence`` or ``n_resamples`` is out of range.
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie strictly between 0 and 1; got {confidence}")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be at least 1; got {n_resamples}")
    value = statistic(_ones(n_items))
    if value is None or n_items < 2:
        return AgreementEstimate(value, value, value, n_items)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples):
        weights = np.bincount(rng.integers(0, n_items, n_items), minlength=n_items)
        drawn = statistic(weights.astype(np.float64))
        if drawn is not None:
            draws.append(drawn)
    if len(draws) < n_resamples / 2:
        return AgreementEstimate(value, None, None, n_items)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.array(draws), [tail, 100 - tail])
    return AgreementEstimate(value, float(low), float(high), n_items)


# -- alpha ---------------------------------------------------------------------------


def _coincidence_alpha(units: list[list[Any]], level: Level) -> Statistic:
    """Alpha from the coincidence matrix: every ordered pair of values within an item,
    weighted 1 / (values in the item - 1)."""
    pairable = [(u, values) for u, values in enumerate(units) if len(values) >= 2]
    scale: list[Any]
    if level == "nominal":
        scale = _sorted_labels([v for _, values in pairable for v in values])
    else:
        pairable = [(u, [_number(v) for v in values]) for u, values in pairable]
        scale = sorted({v for _, values in pairable for v in values})
        if len(scale) > _MAX_ORDINAL_VALUES:
            raise DataError(
                f"{level} alpha is for rating scales; got {len(scale)} distinct values. "
                "Use level='interval' for continuous scores"
            )
    code = {value: i for i, value in enumerate(scale)}
    k = len(scale)
    item, cell, share = [], [], []
    for u, values in pairable:
        codes = [code[v] for v in values]
        m = len(codes)
        for i, c in enumerate(codes):
            for j, d in enumerate(codes):
                if i != j:
                    item.append(u)
                    cell.append(c * k + d)
                    share.append(1.0 / (m - 1))
    item_of = np.array(item, dtype=np.int64)
    cells = np.array(cell, dtype=np.int64)
    shares = np.array(share, dtype=np.float64)
    points = np.array(range(k) if level == "nominal" else scale, dtype=np.float64)

    def alpha(weights: FloatArray) -> float | None:
        if k == 0:
            return None
        counts = np.bincount(cells, weights=shares * weights[item_of], minlength=k * k)
        coincidences = np.asarray(counts, dtype=np.float64).reshape(k, k)
        return _alpha_from(coincidences, _delta(level, points, coincidences.sum(axis=1)))

    return alpha


def _alpha_from(coincidences: FloatArray, delta: FloatArray) -> float | None:
    margins = coincidences.sum(axis=1)
    n = float(margins.sum())
    if n <= 1:
        return None
    expected = float((np.outer(margins, margins) * delta).sum())
    if expected <= 0:
        return None
    return 1.0 - (n - 1) * float((coincidences * delta).sum()) / expected


def _delta(level: Level, values: FloatArray, margins: FloatArray) -> FloatArray:
    """The squared difference of every two values at ``level``."""
    if level == "nominal":
        return 1.0 - np.eye(values.size)
    if level == "ratio":
        total = values[:, None] + values[None, :]
        diff = values[:, None] - values[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total == 0, 0.0, (diff / np.where(total == 0, 1.0, total)) ** 2)
    # ordinal: the values between two ranks, counting each end half.
    cum = np.cumsum(margins)
    low_to_high = cum[None, :] - cum[:, None] + (margins[:, None] - margins[None, :]) / 2
    upper = np.triu(low_to_high**2)
    return upper + upper.T


def _interval_alpha(units: list[list[Any]]) -> Statistic:
    """Interval alpha in closed form from per-item sums: no values x values matrix, so
    continuous scores (probabilities) cost nothing extra.

    Within an item of m values, the ordered pairs i != j sum (v_i - v_j)^2 to
    2 m sum (v - mean)^2, each weighted 1 / (m - 1); over all pairable values the
    same identity gives the expected disagreement.
    """
    numeric = [[_number(v) for v in values] if len(values) >= 2 else [] for values in units]
    flat = [v for values in numeric for v in values]
    centre = float(np.mean(flat)) if flat else 0.0  # alpha is shift-free; centring avoids
    count = np.zeros(len(units))  # cancellation in n * sum(v^2) - (sum v)^2 below
    total = np.zeros(len(units))
    squares = np.zeros(len(units))
    within = np.zeros(len(units))
    for u, values in enumerate(numeric):
        if not values:
            continue
        data = np.array(values, dtype=np.float64) - centre
        m = data.size
        count[u], total[u], squares[u] = m, data.sum(), float((data**2).sum())
        within[u] = 2 * m * float(((data - data.mean()) ** 2).sum()) / (m - 1)

    def alpha(weights: FloatArray) -> float | None:
        n = _dot(weights, count)
        if n <= 1:
            return None
        observed = _dot(weights, within)
        spread = n * _dot(weights, squares)
        expected = 2 * (spread - _dot(weights, total) ** 2)
        if expected <= 1e-12 * spread:  # every value drawn is the same: nothing to agree on
            return None
        return 1.0 - (n - 1) * observed / expected

    return alpha


# -- helpers -------------------------------------------------------------------------


def _dot(weights: FloatArray, values: FloatArray) -> float:
    # einsum's own loop, not BLAS: a bootstrap calls this thousands of times, and each
    # BLAS call may wake its thread pool, which on a busy machine costs milliseconds
    # (a 100,000-item interval took 1.7 s with `@`, 0.13 s with this).
    return float(np.einsum("i,i->", weights, values))


def _ones(n: int) -> FloatArray:
    return np.ones(n, dtype=np.float64)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise DataError(f"a numeric level needs numbers; got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise DataError(f"ratings must be finite numbers; got {value!r}")
    return number


def _code(code: dict[Hashable, int], label: Hashable) -> int:
    if label is None:
        raise DataError("kappa needs a label from both judges on every item; got None")
    if label not in code:
        raise DataError(f"label {label!r} is not one of the categories {list(code)!r}")
    return code[label]


def _sorted_labels(labels: Sequence[Hashable]) -> list[Hashable]:
    distinct = list(dict.fromkeys(labels))
    try:
        return sorted(distinct)  # type: ignore[type-var]
    except TypeError:  # mixed types: keep them in the order first seen
        return distinct
