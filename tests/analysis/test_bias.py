"""Bias probes on constructed preferences whose biases are known."""

from __future__ import annotations

import math
import random

import pytest

from heldout._errors import ConfigError
from heldout.analysis import (
    calibrated_p_a,
    length_bias,
    model_family,
    position_bias,
    self_preference,
)
from heldout.evaluators import OrderJudgment, Preference


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def pref(
    id: str,
    p_first_ab: float,
    p_first_ba: float,
    *,
    len_a: int = 100,
    len_b: int = 100,
    generator_a: str | None = None,
    generator_b: str | None = None,
) -> Preference:
    """A preference from each order's P(first): AB shows A first, BA shows B first."""
    orders = (
        OrderJudgment(order="AB", p_first=p_first_ab, p_a=p_first_ab),
        OrderJudgment(order="BA", p_first=p_first_ba, p_a=1 - p_first_ba),
    )
    p_a = (orders[0].p_a + orders[1].p_a) / 2
    return Preference(
        pair_id=id,
        status="ok",
        first_order="AB",
        orders=orders,
        p_a=p_a,
        verdict="tie" if abs(p_a - 0.5) < 1e-9 else "A" if p_a > 0.5 else "B",
        consistent=orders[0].winner == orders[1].winner,
        len_a=len_a,
        len_b=len_b,
        generator_a=generator_a,
        generator_b=generator_b,
    )


def error(id: str) -> Preference:
    return Preference(pair_id=id, status="error", first_order="AB", error_kind="timeout")


# -- position ------------------------------------------------------------------------


def test_a_judge_that_always_picks_the_first_position() -> None:
    prefs = [pref(f"p{i}", 0.9, 0.9) for i in range(20)]

    bias = position_bias(prefs)

    assert bias is not None
    assert bias.n == 20
    assert (bias.first_wins.mean, bias.first_wins.low, bias.first_wins.high) == (1.0, 1.0, 1.0)
    assert bias.consistency.mean == 0.0
    assert bias.mean_p_first == pytest.approx(0.9)
    assert bias.first_log_odds == pytest.approx(math.log(9))


def test_an_unbiased_consistent_judge() -> None:
    # A is better in half the pairs, B in the other half; both orders agree.
    prefs = [pref(f"a{i}", 0.8, 0.2) for i in range(10)] + [
        pref(f"b{i}", 0.2, 0.8) for i in range(10)
    ]

    bias = position_bias([*prefs, error("e1")])

    assert bias is not None
    assert bias.n == 20  # the error is left out
    assert bias.first_wins.mean == 0.5
    assert bias.consistency.mean == 1.0
    assert bias.first_log_odds == pytest.approx(0.0, abs=1e-12)


def test_a_partly_biased_judge_gets_an_interval_around_its_rate() -> None:
    rng = random.Random(1)
    # 30 pairs: the first position wins both orders in 12 (inconsistent), 18 consistent.
    prefs = [pref(f"i{i}", 0.7, 0.7) for i in range(12)]
    prefs += [pref(f"c{i}", *((0.8, 0.3) if rng.random() < 0.5 else (0.3, 0.8))) for i in range(18)]

    bias = position_bias(prefs)

    assert bias is not None
    assert bias.consistency.mean == pytest.approx(18 / 30)
    assert bias.first_wins.mean == pytest.approx((12 + 0.5 * 18) / 30)
    assert bias.consistency.low < 0.6 < bias.consistency.high
    assert bias.consistency.low > 0.4
    assert bias.consistency.high < 0.8


def test_no_ok_pairs_means_no_position_probe() -> None:
    assert position_bias([]) is None
    assert position_bias([error("e")]) is None


def test_calibration_takes_the_first_position_prior_out() -> None:
    prior, evidence = 2.0, 0.8  # log-odds: the judge's lean to the first position, A's edge
    p = pref("x", sigmoid(prior + evidence), sigmoid(prior - evidence))

    assert calibrated_p_a(p, prior, order=0) == pytest.approx(sigmoid(evidence))
    assert calibrated_p_a(p, prior, order=1) == pytest.approx(sigmoid(evidence))
    assert p.orders[1].p_a < 0.5  # uncalibrated, the second order alone picks B
    with pytest.raises(ConfigError, match="error preference"):
        calibrated_p_a(error("e"), prior)


# -- length --------------------------------------------------------------------------


def length_prefs(slope_per_100: float, n: int = 60, seed: int = 3) -> list[Preference]:
    """Pairs whose P(A) rises by ``slope_per_100`` per 100 extra characters of A, plus noise."""
    rng = random.Random(seed)
    prefs = []
    for i in range(n):
        diff = rng.randint(-300, 300)
        p_a = min(0.99, max(0.01, 0.5 + slope_per_100 * diff / 100 + rng.gauss(0, 0.05)))
        # Split p_a evenly over the two orders (an unbiased judge).
        prefs.append(pref(f"l{i}", p_a, 1 - p_a, len_a=400 + diff, len_b=400))
    return prefs


@pytest.mark.parametrize("slope", [0.1, -0.1])
def test_the_length_slope_has_the_right_sign_and_an_interval_around_it(slope: float) -> None:
    bias = length_bias(length_prefs(slope))

    assert bias is not None
    assert bias.n == 60
    assert bias.target == "preference"
    assert bias.slope == pytest.approx(slope, abs=0.02)
    assert bias.slope_low < slope < bias.slope_high
    assert (bias.slope_low > 0) == (slope > 0)
    assert (bias.slope_high > 0) == (slope > 0)
    assert math.copysign(1, bias.spearman) == math.copysign(1, slope)
    assert abs(bias.spearman) > 0.8
    assert bias.spearman_low <= bias.spearman <= bias.spearman_high


def test_a_judge_without_length_bias_has_an_interval_around_zero() -> None:
    bias = length_bias(length_prefs(0.0))

    assert bias is not None
    assert bias.slope_low < 0 < bias.slope_high
    assert bias.spearman_low < 0 < bias.spearman_high


def test_with_labels_only_the_excess_over_people_counts() -> None:
    # People prefer the longer response; the judge says exactly what people say.
    prefs = []
    labels = []
    for i, diff in enumerate(range(-250, 260, 10)):
        label = 1.0 if diff > 0 else 0.0
        p_a = label  # certain, and right
        prefs.append(pref(f"x{i}", p_a, 1 - p_a, len_a=400 + diff, len_b=400))
        labels.append(label)

    raw = length_bias(prefs)
    excess = length_bias(prefs, labels=labels)

    assert raw is not None
    assert excess is not None
    assert raw.slope > 0.1  # length and preference go together ...
    assert excess.target == "excess"
    assert excess.slope == pytest.approx(0.0, abs=1e-9)  # ... but not beyond the people


def test_length_bias_needs_three_pairs_and_varying_lengths() -> None:
    assert length_bias(length_prefs(0.1, n=2)) is None
    same = [pref(f"s{i}", 0.6 + i / 100, 0.4, len_a=50, len_b=20) for i in range(5)]
    assert length_bias(same) is None
    with pytest.raises(ConfigError, match="one label per preference"):
        length_bias(length_prefs(0.1), labels=[1.0])


# -- self-preference -------------------------------------------------------------------


def family_prefs(own_p: float, n: int = 40) -> list[Preference]:
    """Qwen against Llama outputs; the judge gives the Qwen one ``own_p`` (with jitter)."""
    rng = random.Random(5)
    prefs = []
    for i in range(n):
        p = min(0.99, max(0.01, own_p + rng.gauss(0, 0.05)))
        if i % 2:  # the Qwen output is A
            prefs.append(pref(f"q{i}", p, 1 - p, generator_a="Qwen2.5-7B", generator_b="llama-3"))
        else:
            prefs.append(pref(f"q{i}", 1 - p, p, generator_a="llama-3", generator_b="qwen-max"))
    return prefs


def test_a_judge_that_favours_its_family_is_caught() -> None:
    prefs = family_prefs(0.8)
    # Pairs without exactly one Qwen output say nothing about self-preference.
    prefs.append(pref("both", 0.9, 0.1, generator_a="qwen-a", generator_b="qwen-b"))
    prefs.append(pref("none", 0.9, 0.1, generator_a="gpt-4", generator_b=None))

    found = self_preference(prefs, "local:qwen2.5-1.5b")

    assert found is not None
    assert (found.family, found.n) == ("qwen", 40)
    assert found.own_wins.mean == pytest.approx(0.8, abs=0.03)
    assert found.own_wins.low > 0.5
    assert found.test.p_value is not None
    assert found.test.p_value < 0.01
    assert found.label_wins is None


def test_a_neutral_judge_is_not_flagged() -> None:
    found = self_preference(family_prefs(0.5), "qwen")

    assert found is not None
    assert found.own_wins.low < 0.5 < found.own_wins.high
    assert found.test.p_value is not None
    assert found.test.p_value > 0.05


def test_with_labels_self_preference_is_measured_against_the_people() -> None:
    # People prefer the Qwen outputs as strongly as the judge does: no excess.
    prefs = family_prefs(0.8)
    labels = [float(p.p_a or 0.0) for p in prefs]

    found = self_preference(prefs, "qwen", labels=labels)

    assert found is not None
    assert found.label_wins is not None
    assert found.label_wins.mean == pytest.approx(found.own_wins.mean)
    assert found.test.delta == pytest.approx(0.0)


def test_no_pairs_across_families_means_no_probe() -> None:
    assert self_preference([pref("x", 0.6, 0.4)], "qwen") is None
    with pytest.raises(ConfigError, match="one label per preference"):
        self_preference(family_prefs(0.8), "qwen", labels=[1.0])


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("local:qwen2.5-1.5b", "qwen"),
        ("Qwen/Qwen2.5-7B-Instruct", "qwen"),
        ("openai:gpt-4o-mini", "gpt"),
        ("o3-mini", "gpt"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama"),
        ("vicuna-13b", "llama"),
        ("claude-3-5-sonnet", "claude"),
        ("Mixtral-8x7B", "mistral"),
        ("falcon-7b", "falcon"),
    ],
)
def test_model_family(name: str, family: str) -> None:
    assert model_family(name) == family
