"""The judge-overfitting flag: a checkpoint that looks better only to the training judge.

The risk of RLAIF is a policy that learns the training judge's quirks. Across the
checkpoints of a regression eval, compare each checkpoint's change against the
baseline under two judges on the same outputs: the training judge and a held-apart
eval judge. A row is **flagged** when the training judge sees a significant rise
and the eval judge does not (its change is not significant, or is a drop).

Each judge's deltas, intervals and corrected p-values come from its own
:class:`~heldout.analysis.RegressionTable` (paired tests over prompts, only ``ok``
scores, errors counted), so the flag inherits their multiple-comparison control.
The training judge's scores come from running the sweep again under it
(:func:`training_judge_sweep`) or from its imported verdicts
(:func:`scores_from_verdicts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from heldout._errors import ConfigError, DataError
from heldout.analysis._stats import DEFAULT_RESAMPLES, Correction, TestMethod
from heldout.analysis._table import MetricRow, RegressionTable, regression_table
from heldout.data import JudgeVerdict
from heldout.store import StoredScore, sample_key

if TYPE_CHECKING:
    from heldout.sweep import SweepConfig

OverfitStatus = Literal["flagged", "ok", "untested"]


class OverfitRow(BaseModel):
    """One checkpoint, cohort and metric under the training judge and the eval judge."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: str
    """The checkpoint compared with the baseline."""
    cohort: str
    """The cohort, or ``"*"`` for all cohorts pooled."""
    metric: str
    """The metric under the training judge."""
    eval_metric: str
    """The metric under the eval judge (the same name unless mapped)."""
    status: OverfitStatus
    """``flagged``: a significant rise under the training judge only; ``ok``: not
    flagged; ``untested``: a judge has no test for this row."""
    reason: str
    """Both judges' deltas in words, and what follows from them."""
    training_delta: float | None
    """Mean change against the baseline under the training judge."""
    training_ci_low: float | None
    """Lower bound of its paired-bootstrap interval."""
    training_ci_high: float | None
    """Upper bound of that interval."""
    training_p_adjusted: float | None
    """Its corrected p-value."""
    training_n: int | None
    """Prompts both the checkpoint and the baseline were scored ok on."""
    eval_delta: float | None
    """Mean change against the baseline under the eval judge."""
    eval_ci_low: float | None
    """Lower bound of its paired-bootstrap interval."""
    eval_ci_high: float | None
    """Upper bound of that interval."""
    eval_p_adjusted: float | None
    """Its corrected p-value."""
    eval_n: int | None
    """Prompts paired under the eval judge."""
    training_errors: int
    """Error scores of the checkpoint under the training judge (never averaged in)."""
    eval_errors: int
    """Error scores of the checkpoint under the eval judge."""


class CheckpointOverfit(BaseModel):
    """The flag of one checkpoint: raised when any of its rows is flagged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: str
    """The checkpoint."""
    flagged: bool
    """Whether any (cohort, metric) of it rose under the training judge only."""
    flagged_rows: list[str]
    """The flagged rows as ``"cohort/metric"``."""
    untested_rows: int
    """Rows without a test under one of the judges."""


class OverfitReport(BaseModel):
    """The judge-overfitting flag of every checkpoint, row by row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    baseline: str
    """The checkpoint both tables compare against."""
    training_alpha: float
    """The significance threshold of the training judge's table."""
    eval_alpha: float
    """The significance threshold of the eval judge's table."""
    checkpoints: list[CheckpointOverfit]
    """One per non-baseline checkpoint, in sweep order."""
    rows: list[OverfitRow]
    """Per checkpoint (sweep order), in the training table's row order."""

    @property
    def flagged(self) -> list[str]:
        """The checkpoints that rose under the training judge only."""
        return [c.checkpoint for c in self.checkpoints if c.flagged]


def judge_overfitting(
    training: RegressionTable,
    eval_table: RegressionTable,
    *,
    metrics: Mapping[str, str] | None = None,
) -> OverfitReport:
    """Flag checkpoints whose gain shows only under the training judge.

    Args:
        training: The regression table of the training judge's scores.
        eval_table: The regression table of the eval judge's scores on the same
            checkpoint outputs, with the same baseline.
        metrics: Training metric name -> eval metric name, for metrics named
            differently under the two judges; default: the metrics both share.

    Raises:
        ConfigError: The tables have different baselines, or no metric in common.
    """
    if training.baseline != eval_table.baseline:
        raise ConfigError(
            f"the tables compare against different baselines ({training.baseline!r} and "
            f"{eval_table.baseline!r}); judge the same checkpoints against the same baseline"
        )
    pairs = dict(metrics) if metrics is not None else _shared_metrics(training, eval_table)
    if not pairs:
        raise ConfigError(
            "the training and eval tables share no metric; map them with metrics={...}"
        )
    rows: list[OverfitRow] = []
    for row in training.rows:
        if row.checkpoint == training.baseline or row.metric not in pairs:
            continue
        other = eval_table.row(row.checkpoint, row.cohort, pairs[row.metric])
        rows.append(_compare(row, other, pairs[row.metric]))
    order = [c for c in training.checkpoints if c != training.baseline]
    return OverfitReport(
        baseline=training.baseline,
        training_alpha=training.alpha,
        eval_alpha=eval_table.alpha,
        checkpoints=[_checkpoint(c, [r for r in rows if r.checkpoint == c]) for c in order],
        rows=rows,
    )


def overfitting_from_scores(
    training: Iterable[StoredScore],
    eval_scores: Iterable[StoredScore],
    *,
    baseline: str,
    metrics: Mapping[str, str] | None = None,
    confidence: float = 0.95,
    test: TestMethod = "permutation",
    correction: Correction = "holm",
    alpha: float = 0.05,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> OverfitReport:
    """:func:`judge_overfitting` from two judges' stored scores of the same checkpoints.

    Both tables are built with the same statistics settings (see
    :func:`~heldout.analysis.regression_table`). Imported training-judge verdicts
    become scores with :func:`scores_from_verdicts`.
    """

    def table(scores: Iterable[StoredScore]) -> RegressionTable:
        return regression_table(
            scores,
            baseline=baseline,
            confidence=confidence,
            test=test,
            correction=correction,
            alpha=alpha,
            n_resamples=n_resamples,
            seed=seed,
        )

    return judge_overfitting(table(training), table(eval_scores), metrics=metrics)


def training_judge_sweep(sweep: SweepConfig, training_judge: str | None = None) -> SweepConfig:
    """The same sweep judged by the training judge, for the overfitting flag.

    Every evaluator is judged by the training judge (evaluator-level ``judge:``
    settings are dropped), the held-apart check is switched off on purpose, and the
    name gets ``@training-judge``. Checkpoint outputs are the same: outputs files are
    read again, generated outputs come from the store's cache. Example::

        evaluation = RegressionEval("sweep.yaml")
        held_apart = evaluation.run()
        training = RegressionEval(training_judge_sweep(evaluation.sweep)).run()
        report = judge_overfitting(training.table, held_apart.table)

    Args:
        sweep: The sweep as evaluated by the eval judge.
        training_judge: The training judge's spec; default the sweep's.

    Raises:
        ConfigError: Neither the sweep nor the argument names a training judge.
    """
    judge = training_judge or sweep.training_judge
    if not judge:
        raise ConfigError(
            f"sweep {sweep.name!r} names no training_judge; set it in the sweep or pass "
            "training_judge="
        )
    return sweep.model_copy(
        update={
            "name": f"{sweep.name}@training-judge",
            "eval_judge": judge,
            "training_judge": judge,
            "allow_training_judge": True,
            "evaluators": [e.model_copy(update={"judge": None}) for e in sweep.evaluators],
        }
    )


def scores_from_verdicts(verdicts: Iterable[JudgeVerdict]) -> list[StoredScore]:
    """Imported per-checkpoint verdicts as stored scores, one metric per axis.

    Raises:
        DataError: A verdict has no checkpoint, or an ok verdict has no score.
    """
    out = []
    for v in verdicts:
        if v.checkpoint is None:
            raise DataError(
                f"verdict on {v.id!r} has no checkpoint; the overfitting flag compares "
                "checkpoints: add a checkpoint column",
                field="checkpoint",
            )
        if v.status == "ok" and v.score is None:
            raise DataError(
                f"verdict on {v.id!r} (checkpoint {v.checkpoint!r}) has a label but no "
                "score; deltas need scores",
                field="score",
            )
        out.append(
            StoredScore(
                sample_id=v.id,
                cohort=v.cohort,
                evaluator=v.axis,
                status=v.status,
                value=v.score,
                passed=None if v.label not in ("pass", "fail") else v.label == "pass",
                reason=v.reason,
                error=v.error,
                error_kind="imported" if v.status == "error" else None,
                judge=v.judge,
                checkpoint=v.checkpoint,
                sample_key=sample_key(v.id, v.checkpoint),
            )
        )
    return out


def _shared_metrics(training: RegressionTable, eval_table: RegressionTable) -> dict[str, str]:
    theirs = {r.metric for r in eval_table.rows}
    return {r.metric: r.metric for r in training.rows if r.metric in theirs}


def _rises(row: MetricRow) -> bool:
    return row.significant and row.delta is not None and row.delta > 0


def _falls(row: MetricRow) -> bool:
    return row.significant and row.delta is not None and row.delta < 0


def _said(row: MetricRow) -> str:
    low, high = row.delta_ci_low, row.delta_ci_high
    interval = "" if low is None or high is None else f" [{low:+.3f}, {high:+.3f}]"
    p = "no test" if row.p_adjusted is None else f"p adj {row.p_adjusted:.3g}"
    return f"{row.delta:+.3f}{interval}, {p}" if row.delta is not None else "no paired scores"


def _compare(row: MetricRow, other: MetricRow | None, eval_metric: str) -> OverfitRow:
    status: OverfitStatus
    if other is None or row.p_adjusted is None or other.p_adjusted is None:
        missing = "the eval judge has no row" if other is None else "a judge has no test"
        status, reason = "untested", f"untested: {missing} (too few paired prompts?)"
    elif _rises(row) and not _rises(other):
        status = "flagged"
        after = "falls" if _falls(other) else "does not rise significantly"
        reason = (
            f"rises under the training judge ({_said(row)}) but {after} under the eval "
            f"judge ({_said(other)}): the gain may be the training judge's quirks"
        )
    else:
        status = "ok"
        if _rises(row):
            reason = f"rises under both judges (training {_said(row)}; eval {_said(other)})"
        else:
            reason = f"no significant rise under the training judge ({_said(row)})"
    return OverfitRow(
        checkpoint=row.checkpoint,
        cohort=row.cohort,
        metric=row.metric,
        eval_metric=eval_metric,
        status=status,
        reason=reason,
        training_delta=row.delta,
        training_ci_low=row.delta_ci_low,
        training_ci_high=row.delta_ci_high,
        training_p_adjusted=row.p_adjusted,
        training_n=row.n_paired,
        eval_delta=None if other is None else other.delta,
        eval_ci_low=None if other is None else other.delta_ci_low,
        eval_ci_high=None if other is None else other.delta_ci_high,
        eval_p_adjusted=None if other is None else other.p_adjusted,
        eval_n=None if other is None else other.n_paired,
        training_errors=row.n_error,
        eval_errors=0 if other is None else other.n_error,
    )


def _checkpoint(name: str, rows: list[OverfitRow]) -> CheckpointOverfit:
    flagged = [f"{r.cohort}/{r.metric}" for r in rows if r.status == "flagged"]
    return CheckpointOverfit(
        checkpoint=name,
        flagged=bool(flagged),
        flagged_rows=flagged,
        untested_rows=sum(1 for r in rows if r.status == "untested"),
    )
