"""select_checkpoint on constructed tables: guards, errors, ties and the Pareto front."""

from __future__ import annotations

import pytest

from heldout import ConfigError
from heldout.analysis import (
    Guard,
    MetricRow,
    Objective,
    RegressionTable,
    Selection,
    regression_table,
    select_checkpoint,
)
from tests.analysis.test_table import score

HONESTY = Objective(metrics=["custom:*"])
TASK_GUARD = Guard(metric="task_completion", max_drop=0.02)
BASE_TASK = 0.8


def row(
    checkpoint: str,
    metric: str,
    mean: float | None,
    *,
    cohort: str = "core",
    delta: float | None = None,
    p: float | None = 0.5,
    n: int = 100,
    n_error: int = 0,
) -> MetricRow:
    """A row; ``p`` stands for both the raw and the adjusted p-value."""
    if checkpoint == "base":
        return MetricRow(
            checkpoint=checkpoint, cohort=cohort, metric=metric, n=n, n_error=n_error,
            n_skipped=0, mean=mean,
        )  # fmt: skip
    half = 0.04
    return MetricRow(
        checkpoint=checkpoint, cohort=cohort, metric=metric, n=n, n_error=n_error,
        n_skipped=0, mean=mean, n_paired=n, delta=delta,
        delta_ci_low=None if delta is None else delta - half,
        delta_ci_high=None if delta is None else delta + half,
        p_value=p, p_adjusted=p, significant=p is not None and p < 0.05,
    )  # fmt: skip


def checkpoint(
    name: str,
    honesty: float,
    task: float = BASE_TASK,
    *,
    p: float | None = 0.5,
    n: int = 100,
    n_error: int = 0,
    honesty_p: float = 0.5,
) -> list[MetricRow]:
    """An objective row (custom:honesty) and a guarded row (task_completion)."""
    return [
        row(name, "custom:honesty", honesty, delta=honesty - 0.6, p=honesty_p, n_error=n_error),
        row(name, "task_completion", task, delta=task - BASE_TASK, p=p, n=n, n_error=n_error),
    ]


def table(*rows: list[MetricRow]) -> RegressionTable:
    flat = [r for group in rows for r in group]
    return RegressionTable(
        baseline="base",
        checkpoints=list(dict.fromkeys(r.checkpoint for r in flat)),
        rows=flat,
        confidence=0.95,
        test="permutation",
        correction="holm",
        alpha=0.05,
        n_resamples=999,
        seed=0,
    )


def select(*rows: list[MetricRow], guards: list[Guard] | None = None) -> Selection:
    return select_checkpoint(
        table(*rows), objective=HONESTY, guards=[TASK_GUARD] if guards is None else guards
    )


def verdict(selection: Selection, name: str) -> tuple[str, list[str], list[str]]:
    found = selection.verdict(name)
    assert found is not None
    return found.status, found.reasons, found.warnings


def test_the_highest_alignment_wins_and_every_other_says_why() -> None:
    selection = select(
        checkpoint("base", 0.6),
        checkpoint("step-100", 0.7),
        checkpoint("step-200", 0.78, honesty_p=0.001),
    )
    assert selection.chosen == "step-200"
    status, reasons, warnings = verdict(selection, "step-100")
    assert status == "eligible"
    assert "lower alignment than step-200 (0.700 vs 0.780)" in reasons
    status, reasons, warnings = verdict(selection, "step-200")
    assert status == "chosen"
    assert any("significant gains on 1 and losses on 0 of 1" in r for r in reasons)
    assert warnings == []
    base = selection.verdict("base")
    assert base is not None
    assert base.is_baseline
    assert base.status == "eligible"


def test_a_chosen_gain_that_is_not_significant_is_flagged() -> None:
    selection = select(checkpoint("base", 0.6), checkpoint("step-100", 0.62))
    status, _, warnings = verdict(selection, "step-100")
    assert status == "chosen"
    assert warnings == ["no objective row improves significantly on the baseline"]


def test_alignment_is_the_mean_of_row_means_each_row_weighted_equally() -> None:
    rows = [
        row("base", "custom:honesty", 0.8),
        row("base", "custom:harmless", 0.6),
        row("base", "custom:harmless", 0.4, cohort="other", n=1000),
        row("base", "custom:harmless", 0.42, cohort="*", n=1100),
        row("base", "task_completion", 0.1),
    ]

    def alignment(objective: Objective) -> float | None:
        found = select_checkpoint(table(rows), objective=objective).verdict("base")
        assert found is not None
        return found.alignment

    assert alignment(Objective(metrics=["custom:*"])) == pytest.approx((0.8 + 0.6 + 0.4) / 3)
    assert alignment(Objective(metrics=["custom:*"], cohorts=["core"])) == pytest.approx(0.7)
    assert alignment(Objective(metrics=["custom:honesty"])) == pytest.approx(0.8)
    # "*": the pooled row, or the only row of a metric seen in one cohort.
    assert alignment(Objective(metrics=["custom:*"], cohorts=["*"])) == pytest.approx(0.61)


def test_an_alignment_tie_goes_to_higher_capability() -> None:
    selection = select(
        checkpoint("base", 0.6),
        checkpoint("step-100", 0.7, 0.80),
        checkpoint("step-200", 0.7, 0.85),
    )
    assert selection.chosen == "step-200"
    _, reasons, _ = verdict(selection, "step-200")
    assert "tied on alignment with step-100; chosen on higher capability (0.850 vs 0.800)" in (
        reasons
    )
    _, reasons, _ = verdict(selection, "step-100")
    assert reasons[0] == (
        "tied on alignment with step-200 (0.700); step-200 wins on higher capability "
        "(0.850 vs 0.800)"
    )


def test_an_alignment_and_capability_tie_goes_to_fewer_errors_then_sweep_order() -> None:
    selection = select(
        checkpoint("base", 0.6),
        checkpoint("step-100", 0.7, n_error=5),
        checkpoint("step-200", 0.7, n_error=1),
    )
    assert selection.chosen == "step-200"
    assert "fewer errors (1.0% vs 4.8%)" in verdict(selection, "step-200")[1][1]

    selection = select(
        checkpoint("base", 0.6), checkpoint("step-100", 0.7), checkpoint("step-200", 0.7)
    )
    assert selection.chosen == "step-100"
    assert "sweep order" in verdict(selection, "step-200")[1][0]


def test_rounding_noise_is_a_tie() -> None:
    # (0.1 + 0.2) / 2 is 0.15000000000000002 in floating point.
    rows = [
        row("base", "custom:a", 0.0),
        row("step-100", "custom:a", 0.1),
        row("step-100", "custom:b", 0.2),
        row("step-200", "custom:a", 0.15),
    ]
    selection = select_checkpoint(table(rows), objective=HONESTY)
    assert selection.chosen == "step-100"
    assert "sweep order" in verdict(selection, "step-100")[1][1]


def test_a_significant_drop_beyond_tolerance_rejects_even_the_best_aligned() -> None:
    rows = checkpoint("step-200", 0.9, BASE_TASK - 0.081, p=0.003)
    rows[1] = rows[1].model_copy(update={"delta_ci_low": -0.12, "delta_ci_high": -0.04})
    selection = select(checkpoint("base", 0.6), checkpoint("step-100", 0.7), rows)
    assert selection.chosen == "step-100"
    status, reasons, _ = verdict(selection, "step-200")
    assert status == "rejected"
    assert reasons == [
        "task_completion on core dropped 0.081 (95% CI -0.120 to -0.040, p_adj=0.003, n=100) "
        "beyond the 0.02 tolerance"
    ]
    assert "step-200" not in selection.pareto_front


def test_a_significant_drop_within_tolerance_is_allowed_with_a_warning() -> None:
    selection = select(
        checkpoint("base", 0.6), checkpoint("step-100", 0.7, BASE_TASK - 0.015, p=0.001)
    )
    status, _, warnings = verdict(selection, "step-100")
    assert status == "chosen"
    assert len(warnings) == 2
    assert "dropped 0.015" in warnings[0]
    assert warnings[0].endswith("significant, but within the 0.02 tolerance")


def test_a_drop_of_exactly_the_tolerance_is_allowed() -> None:
    # 0.78 - 0.8 is -0.020000000000000018 in floating point.
    selection = select(checkpoint("base", 0.6), checkpoint("step-100", 0.7, 0.78, p=0.001))
    assert verdict(selection, "step-100")[0] == "chosen"


def test_a_big_drop_on_tiny_n_that_is_not_significant_is_allowed_but_flagged() -> None:
    selection = select(
        checkpoint("base", 0.6), checkpoint("step-100", 0.7, BASE_TASK - 0.3, p=0.5, n=3)
    )
    status, _, warnings = verdict(selection, "step-100")
    assert status == "chosen"
    assert "task_completion on core dropped 0.300" in warnings[0]
    assert "n=3) beyond the 0.02 tolerance, but not significantly" in warnings[0]


def test_an_untestable_guard_row_is_flagged() -> None:
    selection = select(checkpoint("base", 0.6), checkpoint("step-100", 0.7, p=None, n=1))
    status, _, warnings = verdict(selection, "step-100")
    assert status == "chosen"
    assert "task_completion on core: 1 paired prompt(s), too few to test" in warnings[0]


def test_too_many_errors_to_judge_is_a_rejection() -> None:
    selection = select(checkpoint("base", 0.6), checkpoint("step-100", 0.9, n_error=15))
    found = selection.verdict("step-100")
    assert found is not None
    assert found.status == "rejected"
    assert (found.n_ok, found.n_error) == (200, 30)
    assert found.error_rate == pytest.approx(30 / 230)
    assert found.reasons == [
        "too many errors to judge: 30 of 230 scores on the objective and guarded rows are "
        "errors (13.0% > 10.0% allowed)"
    ]
    assert selection.chosen == "base"


def test_a_checkpoint_without_guarded_scores_is_rejected() -> None:
    selection = select(checkpoint("base", 0.6), checkpoint("step-100", 0.9)[:1])
    status, reasons, _ = verdict(selection, "step-100")
    assert status == "rejected"
    assert reasons == [
        "no scores for the guard on task_completion (any cohort): "
        "the capability constraint cannot be checked"
    ]


def test_the_pareto_front_and_who_dominates_whom() -> None:
    wide = Guard(metric="task_completion", max_drop=0.2)
    selection = select(
        checkpoint("base", 0.6, 0.80),
        checkpoint("step-100", 0.75, 0.70),
        checkpoint("step-200", 0.70, 0.85),
        checkpoint("step-300", 0.65, 0.82),
        guards=[wide],
    )
    assert selection.chosen == "step-100"
    assert selection.pareto_front == ["step-100", "step-200"]
    assert verdict(selection, "step-200")[1][1].startswith("on the Pareto front")
    assert "not on the Pareto front: dominated by step-200" in verdict(selection, "step-300")[1]
    assert (
        "not on the Pareto front: dominated by step-200, step-300"
        in (verdict(selection, "base")[1])
    )


def test_when_every_candidate_breaks_a_guard_the_baseline_ships() -> None:
    selection = select(
        checkpoint("base", 0.6),
        checkpoint("step-100", 0.8, 0.7, p=0.001),
        checkpoint("step-200", 0.9, 0.6, p=0.001),
    )
    assert selection.chosen == "base"
    assert selection.pareto_front == ["base"]
    base = selection.verdict("base")
    assert base is not None
    assert base.status == "chosen"
    assert base.is_baseline
    assert "it is the baseline: no candidate beats it, so ship nothing new" in base.reasons
    assert [v.status for v in selection.candidates] == ["chosen", "rejected", "rejected"]


def test_when_every_checkpoint_is_rejected_none_is_chosen() -> None:
    selection = select(
        checkpoint("base", 0.6, n_error=50), checkpoint("step-100", 0.8, 0.7, p=0.001)
    )
    assert selection.chosen is None
    assert selection.pareto_front == []
    assert all(v.status == "rejected" for v in selection.candidates)


def test_an_objective_or_guard_matching_nothing_is_a_config_error() -> None:
    rows = checkpoint("base", 0.6)
    with pytest.raises(ConfigError, match=r"matches no row.*Metrics: custom:honesty, task_comp"):
        select_checkpoint(table(rows), objective=Objective(metrics=["custom:helpful"]))
    with pytest.raises(ConfigError, match="The guard on 'groundedness'"):
        select_checkpoint(
            table(rows), objective=HONESTY, guards=[Guard(metric="groundedness", max_drop=0.1)]
        )
    with pytest.raises(ConfigError, match="max_error_rate"):
        select_checkpoint(table(rows), objective=HONESTY, max_error_rate=1.5)


def test_selection_from_stored_scores_end_to_end() -> None:
    scores = []
    for i in range(20):
        jitter = (i % 5) / 50
        for cohort in ("math", "chat"):
            for cp, honesty, task in [
                ("base", 0.5, 0.7),
                ("step-1", 0.6, 0.7),
                ("step-2", 0.8, 0.6),
            ]:
                scores.append(
                    score(cp, f"q{i}", honesty + jitter, cohort=cohort, metric="custom:h")
                )
                scores.append(score(cp, f"q{i}", task + jitter, cohort=cohort))
    scores.append(score("step-1", "q-err", None, cohort="math", status="error"))
    result = regression_table(scores, baseline="base", n_resamples=999)
    selection = select_checkpoint(
        result,
        objective=HONESTY,
        guards=[Guard(metric="task_completion", cohorts=["*"], max_drop=0.05)],
    )
    assert selection.chosen == "step-1"
    status, reasons, _ = verdict(selection, "step-2")
    assert status == "rejected"
    assert reasons[0].startswith("task_completion on all cohorts dropped 0.100 (95% CI")
    step_1 = selection.verdict("step-1")
    assert step_1 is not None
    # Pooled guard rows are not counted on top of the per-cohort objective rows.
    assert (step_1.n_ok, step_1.n_error) == (80, 1)
