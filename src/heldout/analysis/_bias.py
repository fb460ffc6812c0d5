"""Bias probes of a pairwise judge: position, length and self-preference.

Each probe reads :class:`~heldout.evaluators.Preference` records (both orders of
every pair), uses only the ``ok`` ones and says how many it used.

- **Position.** How often the first position shown wins an order, and how often
  both orders of a pair agree (position consistency). An unbiased judge picks the
  first position half the time; a consistent one gives the same winner either way.
- **Length.** The slope of the debiased preference for A against the length
  difference ``len(A) - len(B)``, per 100 characters, and Spearman's correlation,
  both with bootstrap intervals. Length and quality go together in most data, so a
  slope alone is not bias: pass the human labels to regress the judge's *excess*
  preference (judge minus people) instead.
- **Self-preference.** On pairs where exactly one response comes from the judge's
  own model family, the mean probability that the judge prefers that one. Above 0.5
  (and above what the people chose, when labels are given) is self-preference.

Intervals are percentile bootstraps over pairs (the two orders of a pair stay
together), deterministic given ``seed``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from heldout._errors import ConfigError
from heldout.analysis._stats import MeanInterval, PairedTest, mean_interval, paired_test
from heldout.evaluators._pairwise import Preference, ok_preferences

LENGTH_UNIT = 100
"""Length differences are measured in units of this many characters."""

_RESAMPLES = 2000


@dataclass(frozen=True)
class PositionBias:
    """How much a judge's verdicts depend on the order of the responses.

    Attributes:
        n: Pairs judged in both orders.
        first_wins: The share of orders the first position shown won, with its
            interval (0.5 is unbiased; per pair 0, 0.5 or 1).
        consistency: The share of pairs with the same winner in both orders.
        mean_p_first: The mean probability the judge gave the first position.
        first_log_odds: The mean log-odds of the first position: the judge's prior
            for it, which :func:`calibrated_p_a` subtracts.
    """

    n: int
    first_wins: MeanInterval
    consistency: MeanInterval
    mean_p_first: float
    first_log_odds: float


@dataclass(frozen=True)
class LengthBias:
    """How the preference for A moves with A's extra length.

    Attributes:
        n: Pairs used.
        target: ``preference`` (P(A) itself) or ``excess`` (P(A) minus the label).
        slope: Change of the target per 100 characters of ``len(A) - len(B)``.
        slope_low: Lower bound of the slope's bootstrap interval.
        slope_high: Upper bound.
        spearman: Spearman's rank correlation of the target with the difference.
        spearman_low: Lower bound of its bootstrap interval.
        spearman_high: Upper bound.
        confidence: The intervals' confidence level.
    """

    n: int
    target: str
    slope: float
    slope_low: float
    slope_high: float
    spearman: float
    spearman_low: float
    spearman_high: float
    confidence: float


@dataclass(frozen=True)
class SelfPreference:
    """Does the judge favour responses of its own model family?

    Attributes:
        family: The judge's model family (``qwen``).
        n: Pairs where exactly one response comes from that family.
        own_wins: The mean debiased probability that the own-family response is
            better, with its interval (0.5 is neutral).
        test: The judge's rate against 0.5, or against the labels when given
            (``delta`` is then the excess over what the people chose).
        label_wins: How often the labels preferred the own-family response, when given.
    """

    family: str
    n: int
    own_wins: MeanInterval
    test: PairedTest
    label_wins: MeanInterval | None


def position_bias(
    preferences: Sequence[Preference], *, confidence: float = 0.95, seed: int = 0
) -> PositionBias | None:
    """The first-position win rate and the position consistency; None without pairs."""
    ok = ok_preferences(preferences)
    if not ok:
        return None
    p_first = [[j.p_first for j in p.orders] for p in ok]
    first_won = [float(np.mean([_won(x) for x in row])) for row in p_first]
    consistent = [float(bool(p.consistent)) for p in ok]
    flat = [x for row in p_first for x in row]
    first_wins = mean_interval(first_won, confidence=confidence, seed=seed)
    consistency = mean_interval(consistent, confidence=confidence, seed=seed)
    if first_wins is None or consistency is None:  # pragma: no cover - ok is non-empty
        return None
    return PositionBias(
        n=len(ok),
        first_wins=first_wins,
        consistency=consistency,
        mean_p_first=float(np.mean(flat)),
        first_log_odds=float(np.mean([_logit(x) for x in flat])),
    )


def calibrated_p_a(preference: Preference, first_log_odds: float, *, order: int = 0) -> float:
    """P(A is better) from one order with the first position's prior taken out.

    A judge's log-odds for the first position are its prior plus the evidence; the
    prior (``PositionBias.first_log_odds``, fitted over many pairs) is subtracted
    before un-flipping. Averaged over both orders this changes no verdict (the prior
    cancels), but it makes a single order usable on its own.

    Raises:
        ConfigError: The preference is an error (it has no judgments).
    """
    if preference.status != "ok":
        raise ConfigError(f"pair {preference.pair_id}: an error preference has no judgments")
    judgment = preference.orders[order]
    p_first = 1.0 / (1.0 + math.exp(-(_logit(judgment.p_first) - first_log_odds)))
    return p_first if judgment.order == "AB" else 1.0 - p_first


def length_bias(
    preferences: Sequence[Preference],
    *,
    labels: Sequence[float] | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> LengthBias | None:
    """The slope and rank correlation of the preference for A with A's extra length.

    Args:
        preferences: The judged pairs.
        labels: Optional, one per preference (errors included): 1 when people
            preferred A, 0 for B, 0.5 for a tie. With labels the target is the
            judge's excess preference ``p_a - label``.
        confidence: The intervals' confidence level.
        seed: Seed of the bootstrap.

    Returns:
        None with fewer than three ok pairs, or when every length difference is
        the same (no slope exists).

    Raises:
        ConfigError: ``labels`` does not have one entry per preference.
    """
    if labels is not None and len(labels) != len(preferences):
        raise ConfigError(
            f"length_bias needs one label per preference; got {len(labels)} for {len(preferences)}"
        )
    keep = [i for i, p in enumerate(preferences) if p.status == "ok"]
    if len(keep) < 3:
        return None
    x = np.array(
        [(preferences[i].len_a - preferences[i].len_b) / LENGTH_UNIT for i in keep],
        dtype=np.float64,
    )
    y = np.array([float(preferences[i].p_a or 0.0) for i in keep], dtype=np.float64)
    if labels is not None:
        y = y - np.array([labels[i] for i in keep], dtype=np.float64)
    if np.all(x == x[0]):
        return None
    slope, rho = _slope(x[None, :], y[None, :])[0], _spearman(x[None, :], y[None, :])[0]
    rng = np.random.default_rng(seed)
    index = rng.integers(0, x.size, size=(_RESAMPLES, x.size))
    bx, by = x[index], y[index]
    usable = np.ptp(bx, axis=1) > 0  # a resample with one length has no slope
    tail = (1 - confidence) / 2 * 100
    slopes = _slope(bx[usable], by[usable])
    rhos = _spearman(bx[usable], by[usable])
    rhos = rhos[np.isfinite(rhos)]
    s_low, s_high = np.percentile(slopes, [tail, 100 - tail])
    r_low, r_high = np.percentile(rhos, [tail, 100 - tail]) if rhos.size else (rho, rho)
    return LengthBias(
        n=int(x.size),
        target="preference" if labels is None else "excess",
        slope=float(slope),
        slope_low=float(s_low),
        slope_high=float(s_high),
        spearman=float(rho) if math.isfinite(rho) else 0.0,
        spearman_low=float(r_low),
        spearman_high=float(r_high),
        confidence=confidence,
    )


def self_preference(
    preferences: Sequence[Preference],
    family: str,
    *,
    labels: Sequence[float] | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> SelfPreference | None:
    """The judge's preference for responses of its own model family.

    Args:
        preferences: The judged pairs, with ``generator_a`` / ``generator_b`` set.
        family: The judge's family (``qwen``) or any model name or judge spec, which
            :func:`model_family` reduces to one.
        labels: Optional, one per preference: 1 when people preferred A, 0 for B,
            0.5 for a tie; the test then compares the judge with the people.
        confidence: The interval's confidence level.
        seed: Seed of the bootstrap and the permutation test.

    Returns:
        None when no ok pair has exactly one response of the family.

    Raises:
        ConfigError: ``labels`` does not have one entry per preference.
    """
    if labels is not None and len(labels) != len(preferences):
        raise ConfigError(
            f"self_preference needs one label per preference; got {len(labels)} "
            f"for {len(preferences)}"
        )
    own = model_family(family)
    judged: list[float] = []
    people: list[float] = []
    for i, p in enumerate(preferences):
        a_own = p.generator_a is not None and model_family(p.generator_a) == own
        b_own = p.generator_b is not None and model_family(p.generator_b) == own
        if p.status != "ok" or p.p_a is None or a_own == b_own:
            continue
        judged.append(p.p_a if a_own else 1.0 - p.p_a)
        if labels is not None:
            people.append(labels[i] if a_own else 1.0 - labels[i])
    own_wins = mean_interval(judged, confidence=confidence, seed=seed)
    if own_wins is None:
        return None
    baseline = people if labels is not None else [0.5] * len(judged)
    return SelfPreference(
        family=own,
        n=len(judged),
        own_wins=own_wins,
        test=paired_test(baseline, judged, confidence=confidence, seed=seed),
        label_wins=mean_interval(people, confidence=confidence, seed=seed) if people else None,
    )


_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("qwen", ("qwen", "qwq")),
    ("llama", ("llama", "vicuna", "alpaca")),
    ("gpt", ("gpt", "chatgpt", "davinci")),
    ("claude", ("claude",)),
    ("gemini", ("gemini", "palm", "bard")),
    ("gemma", ("gemma",)),
    ("mistral", ("mistral", "mixtral", "ministral", "codestral")),
    ("phi", ("phi",)),
    ("deepseek", ("deepseek",)),
    ("command", ("command", "cohere")),
)


def model_family(name: str) -> str:
    """The model family of a model name or judge spec, lowercased.

    ``local:qwen2.5-1.5b`` and ``Qwen/Qwen2.5-7B-Instruct`` are ``qwen``,
    ``openai:gpt-4o-mini`` is ``gpt``, ``Llama-3-8B`` and ``vicuna-13b`` (a Llama
    fine-tune) are ``llama``. An unknown name gives its leading letters
    (``falcon-7b`` is ``falcon``).
    """
    text = name.lower().rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    if re.match(r"o[1-9](?![0-9a-z])", text):  # OpenAI's o1, o3-mini ...
        return "gpt"
    words = re.findall(r"[a-z]+", text)
    for family, prefixes in _FAMILIES:
        if any(word.startswith(prefixes) for word in words):
            return family
    return words[0] if words else text


def _won(p_first: float) -> float:
    """1 when the first position won this order, 0 when it lost, 0.5 at exactly 0.5."""
    return 1.0 if p_first > 0.5 else 0.0 if p_first < 0.5 else 0.5


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _slope(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Least-squares slopes of each row of ``y`` on the same row of ``x``."""
    dx = x - x.mean(axis=1, keepdims=True)
    dy = y - y.mean(axis=1, keepdims=True)
    return np.asarray((dx * dy).sum(axis=1) / (dx * dx).sum(axis=1), dtype=np.float64)


def _spearman(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Spearman's rho of each row pair (NaN where a row is constant)."""
    rx = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    dx = rx - rx.mean(axis=1, keepdims=True)
    dy = ry - ry.mean(axis=1, keepdims=True)
    denom = np.sqrt((dx * dx).sum(axis=1) * (dy * dy).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((dx * dy).sum(axis=1) / denom, dtype=np.float64)
