"""The regression table: every checkpoint against the baseline, per cohort and metric.

Only ``ok`` scores enter means, fail rates and tests; errors and skips are counted
on every row next to the mean. A candidate is compared with the baseline on the
prompts both scored ``ok`` (paired by cohort and sample id), and the p-values of
the whole table form one family for the multiple-comparison correction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr

from heldout._errors import ConfigError, DataError
from heldout.analysis._stats import (
    DEFAULT_RESAMPLES,
    Correction,
    TestMethod,
    adjust_p_values,
    mean_interval,
    paired_test,
)
from heldout.store import StoredScore

ALL_COHORTS = "*"
"""The cohort name of the pooled rows, which pool every cohort of one metric."""

_PairKey = tuple[str, str]
"""(cohort, sample_id): the key that pairs a candidate's score with the baseline's."""


class MetricRow(BaseModel):
    """One metric of one checkpoint on one cohort, with its comparison to the baseline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: str
    """The checkpoint."""
    cohort: str
    """The held-out cohort, or ``"*"`` for all cohorts pooled."""
    metric: str
    """The evaluator's name, one per constitutional axis (e.g. ``custom:honesty``)."""
    n: int
    """Scores with status ``ok``: the only ones in ``mean``, ``fail_rate`` and tests."""
    n_error: int
    """Scores with status ``error``: counted, never averaged in."""
    n_skipped: int
    """Scores with status ``skipped``."""
    mean: float | None = None
    """The mean ``ok`` score in [0, 1]; None when ``n`` is 0."""
    ci_low: float | None = None
    """Lower bound of the bootstrap interval of ``mean`` (resampling prompts)."""
    ci_high: float | None = None
    """Upper bound of that interval."""
    fail_rate: float | None = None
    """Share of ``ok`` scores with ``passed`` false, among those with a verdict."""
    n_paired: int | None = None
    """Prompts scored ``ok`` for both this checkpoint and the baseline; None on
    baseline rows."""
    delta: float | None = None
    """Mean of (this checkpoint - baseline) over the paired prompts."""
    delta_ci_low: float | None = None
    """Lower bound of the paired-bootstrap interval of ``delta``."""
    delta_ci_high: float | None = None
    """Upper bound of that interval."""
    p_value: float | None = None
    """Two-sided p-value of "no difference"; None with fewer than two pairs."""
    p_adjusted: float | None = None
    """``p_value`` corrected over every tested row of the table."""
    significant: bool = False
    """``p_adjusted < alpha``; False for baseline rows and untested rows."""


class RowChange(BaseModel):
    """One prompt whose pass/fail verdict flipped between the baseline and a checkpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["regression", "fix"]
    """``regression``: the baseline passed, the checkpoint fails; ``fix``: the reverse."""
    checkpoint: str
    """The checkpoint."""
    sample_id: str
    """The prompt's id."""
    cohort: str
    """The prompt's cohort."""
    metric: str
    """The evaluator's name."""
    baseline_value: float
    """The baseline's score."""
    value: float
    """The checkpoint's score."""
    baseline_reason: str
    """The judge's reason for the baseline's score."""
    reason: str
    """The judge's reason for the checkpoint's score."""


class RegressionTable(BaseModel):
    """Every (checkpoint, cohort, metric) row of a regression eval, baseline included."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    baseline: str
    """The checkpoint every other one is compared with."""
    checkpoints: list[str]
    """Every checkpoint, in the order first seen (the sweep order)."""
    rows: list[MetricRow]
    """Per checkpoint (sweep order): its cohorts (first seen), then ``"*"``; within
    each, its metrics (first seen)."""
    confidence: float
    """The confidence level of every interval, e.g. 0.95."""
    test: TestMethod
    """The paired test behind ``p_value``."""
    correction: Correction
    """The multiple-comparison correction behind ``p_adjusted``."""
    alpha: float
    """The threshold on ``p_adjusted`` for ``significant``."""
    n_resamples: int
    """Bootstrap and permutation resamples per row."""
    seed: int
    """The resampling seed (the same for every row)."""

    _index: dict[tuple[str, str, str], MetricRow] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        """Index the rows by (checkpoint, cohort, metric) for :meth:`row`."""
        self._index = {(r.checkpoint, r.cohort, r.metric): r for r in self.rows}

    def row(self, checkpoint: str, cohort: str, metric: str) -> MetricRow | None:
        """The row of ``metric`` for ``checkpoint`` on ``cohort``, or None."""
        return self._index.get((checkpoint, cohort, metric))

    def rows_for(self, checkpoint: str) -> list[MetricRow]:
        """The rows of one checkpoint, in table order."""
        return [r for r in self.rows if r.checkpoint == checkpoint]

    def to_records(self) -> list[dict[str, Any]]:
        """The rows as JSON-ready dicts, one per row, for JSON or CSV export."""
        return [r.model_dump(mode="json") for r in self.rows]


@dataclass
class _Cell:
    """The scores of one (checkpoint, cohort, metric) while the table is built."""

    values: dict[_PairKey, float] = field(default_factory=dict)
    verdicts: dict[_PairKey, bool] = field(default_factory=dict)
    reasons: dict[_PairKey, str] = field(default_factory=dict)
    seen: set[_PairKey] = field(default_factory=set)
    n_error: int = 0
    n_skipped: int = 0


@dataclass(frozen=True)
class _Stats:
    """How every row is computed: the arguments of :func:`regression_table`."""

    confidence: float
    test: TestMethod
    n_resamples: int
    seed: int


def regression_table(
    scores: Iterable[StoredScore],
    *,
    baseline: str,
    confidence: float = 0.95,
    test: TestMethod = "permutation",
    correction: Correction = "holm",
    alpha: float = 0.05,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> RegressionTable:
    """Compare every checkpoint of a regression eval with ``baseline``.

    One row per (checkpoint, cohort, metric) present in ``scores``, baseline rows
    included (they carry no comparison). For every metric seen in two or more
    cohorts, each checkpoint also gets a pooled row with cohort ``"*"``: all its
    prompts of that metric, each prompt weighted equally (so bigger cohorts weigh
    more).

    The correction family is every non-baseline row with a p-value, pooled rows
    included: a reader scanning the table for "significant" is protected across
    everything shown. That makes the correction a little stricter; Holm stays valid
    whatever the dependence between pooled and per-cohort rows, BH under the
    positive dependence they have.

    Every row resamples with the same ``seed``, so a row's interval does not change
    when checkpoints are added to or removed from the sweep.

    Args:
        scores: Stored scores of a regression eval (every one with a checkpoint).
        baseline: The checkpoint to compare against.
        confidence: Confidence level of the intervals.
        test: The paired test; see :func:`heldout.analysis.paired_test`.
        correction: ``holm`` (family-wise error) or ``bh`` (false discovery rate).
        alpha: A row is ``significant`` when ``p_adjusted < alpha``.
        n_resamples: Bootstrap and permutation resamples per row.
        seed: Resampling seed.

    Raises:
        ConfigError: ``baseline`` has no scores, or ``alpha`` is not in (0, 1).
        DataError: A score has no checkpoint, or one prompt was scored twice by the
            same metric for the same checkpoint.
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie strictly between 0 and 1; got {alpha}")
    cells, checkpoints = _collect(scores, baseline)
    _add_pooled(cells)
    spec = _Stats(confidence, test, n_resamples, seed)
    rows = [_row(key, cell, cells, baseline, spec) for key, cell in _ordered(cells, checkpoints)]
    adjusted = adjust_p_values([r.p_value for r in rows], correction)
    rows = [
        r if p is None else r.model_copy(update={"p_adjusted": p, "significant": p < alpha})
        for r, p in zip(rows, adjusted, strict=True)
    ]
    return RegressionTable(
        baseline=baseline,
        checkpoints=checkpoints,
        rows=rows,
        confidence=confidence,
        test=test,
        correction=correction,
        alpha=alpha,
        n_resamples=n_resamples,
        seed=seed,
    )


def row_changes(scores: Iterable[StoredScore], *, baseline: str) -> list[RowChange]:
    """The prompts whose pass/fail verdict flipped between ``baseline`` and a checkpoint.

    Only ``ok`` scores with a ``passed`` verdict on both sides count. Ordered by
    checkpoint (sweep order), regressions before fixes, then cohort, metric and
    sample id.

    Raises:
        ConfigError: ``baseline`` has no scores.
        DataError: As for :func:`regression_table`.
    """
    cells, checkpoints = _collect(scores, baseline)
    base_scores = {key[1:]: cell for key, cell in cells.items() if key[0] == baseline}
    changes: list[RowChange] = []
    for (checkpoint, cohort, metric), cell in cells.items():
        base = base_scores.get((cohort, metric))
        if checkpoint == baseline or base is None:
            continue
        for pair_key, passed in cell.verdicts.items():
            before = base.verdicts.get(pair_key)
            if before is None or before == passed:
                continue
            changes.append(
                RowChange(
                    kind="fix" if passed else "regression",
                    checkpoint=checkpoint,
                    sample_id=pair_key[1],
                    cohort=cohort,
                    metric=metric,
                    baseline_value=base.values[pair_key],
                    value=cell.values[pair_key],
                    baseline_reason=base.reasons[pair_key],
                    reason=cell.reasons[pair_key],
                )
            )
    order = {c: i for i, c in enumerate(checkpoints)}
    changes.sort(
        key=lambda c: (order[c.checkpoint], c.kind != "regression", c.cohort, c.metric, c.sample_id)
    )
    return changes


def _collect(
    scores: Iterable[StoredScore], baseline: str
) -> tuple[dict[tuple[str, str, str], _Cell], list[str]]:
    """Group the scores by (checkpoint, cohort, metric); the checkpoints in sweep order."""
    cells: dict[tuple[str, str, str], _Cell] = {}
    checkpoints: dict[str, None] = {}
    for score in scores:
        if score.checkpoint is None:
            raise DataError(
                f"Score of sample {score.sample_id!r} ({score.evaluator}) has no checkpoint: "
                "a regression table needs the scores of a regression eval"
            )
        if score.cohort == ALL_COHORTS:
            raise DataError(
                f"Sample {score.sample_id!r} is in cohort {ALL_COHORTS!r}, the name reserved "
                "for pooled rows; rename the cohort"
            )
        checkpoints.setdefault(score.checkpoint)
        cell = cells.setdefault((score.checkpoint, score.cohort, score.evaluator), _Cell())
        _add_score(cell, score)
    if baseline not in checkpoints:
        available = ", ".join(checkpoints) or "none"
        raise ConfigError(f"Baseline {baseline!r} has no scores. Checkpoints: {available}")
    return cells, list(checkpoints)


def _add_score(cell: _Cell, score: StoredScore) -> None:
    key = (score.cohort, score.sample_id)
    if key in cell.seen:
        raise DataError(
            f"Sample {score.sample_id!r} of cohort {score.cohort!r} has two "
            f"{score.evaluator!r} scores for checkpoint {score.checkpoint!r}; "
            "pass the scores of one run"
        )
    cell.seen.add(key)
    if score.status == "error":
        cell.n_error += 1
    elif score.status == "skipped":
        cell.n_skipped += 1
    elif score.value is None:
        raise DataError(
            f"Sample {score.sample_id!r} ({score.evaluator}, {score.checkpoint}) is ok "
            "but has no value"
        )
    else:
        cell.values[key] = score.value
        cell.reasons[key] = score.reason
        if score.passed is not None:
            cell.verdicts[key] = score.passed


def _add_pooled(cells: dict[tuple[str, str, str], _Cell]) -> None:
    """Add a ``"*"`` cell per checkpoint for each metric seen in two or more cohorts."""
    cohorts_of: dict[str, set[str]] = {}
    for _, cohort, metric in cells:
        cohorts_of.setdefault(metric, set()).add(cohort)
    pooled: dict[tuple[str, str, str], _Cell] = {}
    for (checkpoint, _, metric), cell in cells.items():
        if len(cohorts_of[metric]) < 2:
            continue
        target = pooled.setdefault((checkpoint, ALL_COHORTS, metric), _Cell())
        # Keys carry the cohort, so merging cohorts never collides.
        target.values.update(cell.values)
        target.verdicts.update(cell.verdicts)
        target.reasons.update(cell.reasons)
        target.n_error += cell.n_error
        target.n_skipped += cell.n_skipped
    cells.update(pooled)


def _ordered(
    cells: dict[tuple[str, str, str], _Cell], checkpoints: list[str]
) -> list[tuple[tuple[str, str, str], _Cell]]:
    """The cells in table order: checkpoint, then cohort (``"*"`` last), then metric."""
    cohort_rank: dict[str, int] = {}
    metric_rank: dict[str, int] = {}
    for _, cohort, metric in cells:
        if cohort != ALL_COHORTS:
            cohort_rank.setdefault(cohort, len(cohort_rank))
        metric_rank.setdefault(metric, len(metric_rank))
    checkpoint_rank = {c: i for i, c in enumerate(checkpoints)}

    def rank(key: tuple[str, str, str]) -> tuple[int, int, int]:
        checkpoint, cohort, metric = key
        return (
            checkpoint_rank[checkpoint],
            cohort_rank.get(cohort, len(cohort_rank)),
            metric_rank[metric],
        )

    return sorted(cells.items(), key=lambda item: rank(item[0]))


def _row(
    key: tuple[str, str, str],
    cell: _Cell,
    cells: dict[tuple[str, str, str], _Cell],
    baseline: str,
    spec: _Stats,
) -> MetricRow:
    """One row before the correction: counts, mean and interval, comparison."""
    checkpoint, cohort, metric = key
    # Sorted keys make every row independent of the order the store returned scores in.
    interval = mean_interval(
        [cell.values[k] for k in sorted(cell.values)],
        confidence=spec.confidence,
        n_resamples=spec.n_resamples,
        seed=spec.seed,
    )
    verdicts = list(cell.verdicts.values())
    row = MetricRow(
        checkpoint=checkpoint,
        cohort=cohort,
        metric=metric,
        n=len(cell.values),
        n_error=cell.n_error,
        n_skipped=cell.n_skipped,
        mean=None if interval is None else interval.mean,
        ci_low=None if interval is None else interval.low,
        ci_high=None if interval is None else interval.high,
        fail_rate=verdicts.count(False) / len(verdicts) if verdicts else None,
    )
    if checkpoint == baseline:
        return row
    base = cells.get((baseline, cohort, metric), _Cell())
    paired = sorted(k for k in cell.values if k in base.values)
    test = paired_test(
        [base.values[k] for k in paired],
        [cell.values[k] for k in paired],
        method=spec.test,
        confidence=spec.confidence,
        n_resamples=spec.n_resamples,
        seed=spec.seed,
    )
    return row.model_copy(
        update={
            "n_paired": test.n,
            "delta": test.delta,
            "delta_ci_low": test.ci_low,
            "delta_ci_high": test.ci_high,
            "p_value": test.p_value,
        }
    )
