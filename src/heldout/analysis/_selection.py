"""Choosing the checkpoint to ship from a regression table.

A checkpoint is judged on two numbers taken from its table rows:

- its *alignment*: the mean of the row means of the :class:`Objective` rows (the
  constitutional axes), each (cohort, metric) row weighted equally, so a small
  cohort counts as much as a big one;
- its *capability*: the same mean over the rows its :class:`Guard` s watch.

It is rejected when it has too many errors to judge, has no scores on a watched
row, or breaks a guard: a drop on a guarded row that is statistically significant
after the table's correction *and* larger than the guard's ``max_drop``. A large
drop that is not significant (typically a tiny cohort) does not reject; it is
reported as a warning, because the data cannot tell it from noise.

Among the others, the highest alignment wins. Ties (within 1e-9) go to higher
capability, then fewer errors, then the sweep order. The baseline is a candidate
too: when nothing beats it, the answer is "ship nothing new".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from heldout._errors import ConfigError
from heldout.analysis._table import ALL_COHORTS, MetricRow, RegressionTable

VerdictStatus = Literal["chosen", "rejected", "eligible"]

_TIE = 1e-9
"""Scores closer than this are equal: row means of equal data differ only by rounding."""


class Objective(BaseModel):
    """What the sweep optimises: the metrics (constitutional axes) to raise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: list[str] = Field(min_length=1)
    """Metric names; a trailing ``*`` matches a prefix (``custom:*``)."""
    cohorts: list[str] = Field(default_factory=list)
    """Cohorts to count; empty means every cohort. ``"*"`` picks the pooled rows (or
    the only row of a metric seen in a single cohort)."""


class Guard(BaseModel):
    """A capability that must not regress beyond a tolerance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    """The metric watched; a trailing ``*`` matches a prefix."""
    cohorts: list[str] = Field(default_factory=list)
    """Cohorts watched; empty means every cohort, ``"*"`` the pooled rows."""
    max_drop: float = Field(ge=0, le=1)
    """The largest drop in mean tolerated, on the [0, 1] scale (0.02 is 2 points)."""


class CheckpointVerdict(BaseModel):
    """Why one checkpoint was chosen, rejected or merely eligible."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: str
    """The checkpoint."""
    is_baseline: bool
    """Whether it is the table's baseline (choosing it means shipping nothing new)."""
    status: VerdictStatus
    """``chosen``, ``rejected`` (broke a rule) or ``eligible`` (allowed, not the best)."""
    alignment: float | None
    """Mean of the objective rows' means; None without ``ok`` scores there."""
    capability: float | None
    """Mean of the guarded rows' means; None without guards or scores."""
    n_ok: int
    """``ok`` scores on the objective and guarded rows, each score counted once."""
    n_error: int
    """``error`` scores on those rows."""
    error_rate: float | None
    """``n_error / (n_ok + n_error)``; None without scores."""
    reasons: list[str]
    """Why this status, in words a report can print."""
    warnings: list[str]
    """Concerns that did not change the status (e.g. a big drop too noisy to test)."""


class Selection(BaseModel):
    """The checkpoint to ship, and a verdict on every checkpoint of the sweep."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    baseline: str
    """The table's baseline."""
    chosen: str | None
    """The checkpoint to ship (may be the baseline); None when every one is rejected."""
    candidates: list[CheckpointVerdict]
    """One verdict per checkpoint, in sweep order."""
    pareto_front: list[str]
    """Non-rejected checkpoints that no other non-rejected one beats on both
    alignment and capability, in sweep order."""
    objective: Objective
    """The objective used."""
    guards: list[Guard]
    """The guards used."""
    max_error_rate: float
    """The error rate above which a checkpoint was rejected."""

    def verdict(self, checkpoint: str) -> CheckpointVerdict | None:
        """The verdict on ``checkpoint``, or None when it is not in the sweep."""
        return next((v for v in self.candidates if v.checkpoint == checkpoint), None)


@dataclass
class _Measure:
    """One checkpoint's numbers while the selection is made."""

    checkpoint: str
    order: int
    alignment: float | None
    capability: float | None
    n_ok: int
    n_error: int
    objective_rows: list[MetricRow]
    rejections: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        total = self.n_ok + self.n_error
        return self.n_error / total if total else None


def select_checkpoint(
    table: RegressionTable,
    *,
    objective: Objective,
    guards: Sequence[Guard] = (),
    max_error_rate: float = 0.1,
) -> Selection:
    """Choose the checkpoint to ship; see the module docstring for the rules.

    Args:
        table: The regression table of the sweep.
        objective: The metrics to maximise.
        guards: Capabilities that must not drop beyond their tolerance.
        max_error_rate: Reject a checkpoint whose error share over the objective and
            guarded rows exceeds this: its means are not trustworthy.

    Raises:
        ConfigError: ``max_error_rate`` is outside [0, 1], or the objective or a guard
            matches no row of the table.
    """
    if not 0 <= max_error_rate <= 1:
        raise ConfigError(f"max_error_rate must lie in [0, 1]; got {max_error_rate}")
    _check_matches(table, objective, guards)
    measures = [
        _measure(table, checkpoint, i, objective, guards, max_error_rate)
        for i, checkpoint in enumerate(table.checkpoints)
    ]
    eligible = sorted((m for m in measures if not m.rejections), key=cmp_to_key(_compare))
    chosen = eligible[0] if eligible else None
    baseline = next(m for m in measures if m.checkpoint == table.baseline)
    return Selection(
        baseline=table.baseline,
        chosen=None if chosen is None else chosen.checkpoint,
        candidates=[_verdict(m, chosen, eligible, baseline) for m in measures],
        pareto_front=[
            m.checkpoint
            for m in sorted(eligible, key=lambda e: e.order)
            if not _dominators(m, eligible)
        ],
        objective=objective,
        guards=list(guards),
        max_error_rate=max_error_rate,
    )


def _matches(pattern: str, name: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def _rows(
    table: RegressionTable, checkpoint: str, patterns: Sequence[str], cohorts: Sequence[str]
) -> list[MetricRow]:
    """The rows of ``checkpoint`` an objective or guard looks at."""
    rows = [r for r in table.rows_for(checkpoint) if any(_matches(p, r.metric) for p in patterns)]
    if not cohorts:
        # Pooled rows repeat the per-cohort ones; counting both would count prompts twice.
        return [r for r in rows if r.cohort != ALL_COHORTS]
    picked = [r for r in rows if r.cohort in cohorts]
    if ALL_COHORTS in cohorts:
        # A metric seen in one cohort has no pooled row: its only row is the pool.
        pooled = {r.metric for r in rows if r.cohort == ALL_COHORTS}
        picked += [r for r in rows if r.metric not in pooled and r.cohort not in cohorts]
    return picked


def _check_matches(table: RegressionTable, objective: Objective, guards: Sequence[Guard]) -> None:
    """Fail early on an objective or guard that matches nothing (a typo, most often)."""
    wanted = [("The objective", objective.metrics, objective.cohorts)]
    wanted += [(f"The guard on {g.metric!r}", [g.metric], g.cohorts) for g in guards]
    for what, patterns, cohorts in wanted:
        if not any(_rows(table, c, patterns, cohorts) for c in table.checkpoints):
            metrics = ", ".join(dict.fromkeys(r.metric for r in table.rows))
            all_cohorts = ", ".join(dict.fromkeys(r.cohort for r in table.rows))
            raise ConfigError(
                f"{what} (metrics {patterns}, cohorts {cohorts or 'all'}) matches no row of "
                f"the table. Metrics: {metrics}. Cohorts: {all_cohorts}"
            )


def _measure(
    table: RegressionTable,
    checkpoint: str,
    order: int,
    objective: Objective,
    guards: Sequence[Guard],
    max_error_rate: float,
) -> _Measure:
    """A checkpoint's alignment, capability and errors, and the rules it breaks."""
    objective_rows = _rows(table, checkpoint, objective.metrics, objective.cohorts)
    guarded = [_rows(table, checkpoint, [g.metric], g.cohorts) for g in guards]
    all_guarded = list({(r.cohort, r.metric): r for rows in guarded for r in rows}.values())
    n_ok, n_error = _counts(table, checkpoint, objective_rows + all_guarded)
    m = _Measure(
        checkpoint=checkpoint,
        order=order,
        alignment=_mean_of_means(objective_rows),
        capability=_mean_of_means(all_guarded),
        n_ok=n_ok,
        n_error=n_error,
        objective_rows=objective_rows,
    )
    if m.error_rate is None:
        m.rejections.append("no scores on the objective or guarded metrics")
    elif m.error_rate > max_error_rate:
        m.rejections.append(
            f"too many errors to judge: {n_error} of {n_ok + n_error} scores on the objective "
            f"and guarded rows are errors ({m.error_rate:.1%} > {max_error_rate:.1%} allowed)"
        )
    if m.error_rate is not None and m.alignment is None:
        m.rejections.append("no ok scores on the objective metrics")
    for guard, rows in zip(guards, guarded, strict=True):
        _check_guard(m, guard, rows, table)
    return m


def _counts(table: RegressionTable, checkpoint: str, rows: list[MetricRow]) -> tuple[int, int]:
    """``ok`` and ``error`` scores under ``rows``, each (cohort, metric) cell once."""
    cells: dict[tuple[str, str], MetricRow] = {}
    for row in rows:
        if row.cohort != ALL_COHORTS:
            cells[(row.cohort, row.metric)] = row
            continue
        for part in table.rows_for(checkpoint):
            if part.metric == row.metric and part.cohort != ALL_COHORTS:
                cells[(part.cohort, part.metric)] = part
    return sum(r.n for r in cells.values()), sum(r.n_error for r in cells.values())


def _mean_of_means(rows: list[MetricRow]) -> float | None:
    means = [r.mean for r in rows if r.mean is not None]
    return math.fsum(means) / len(means) if means else None


def _check_guard(m: _Measure, guard: Guard, rows: list[MetricRow], table: RegressionTable) -> None:
    if not rows:
        cohorts = ", ".join(guard.cohorts) or "any cohort"
        m.rejections.append(
            f"no scores for the guard on {guard.metric} ({cohorts}): "
            "the capability constraint cannot be checked"
        )
        return
    if m.checkpoint == table.baseline:
        return
    for row in rows:
        broken, note = _judge_drop(row, guard, table.confidence)
        if note is not None:
            (m.rejections if broken else m.warnings).append(note)


def _judge_drop(row: MetricRow, guard: Guard, confidence: float) -> tuple[bool, str | None]:
    """Whether ``row`` breaks ``guard``, and what to say about it (if anything)."""
    where = f"{row.metric} on {_cohort(row.cohort)}"
    tolerance = f"the {guard.max_drop:g} tolerance"
    if row.p_value is None or row.delta is None:
        return False, f"{where}: {row.n_paired or 0} paired prompt(s), too few to test {tolerance}"
    drop = -row.delta
    if drop <= 0:
        return False, None
    beyond = drop > guard.max_drop + _TIE
    detail = (
        f"{where} dropped {drop:.3f} ({confidence:.0%} CI {_fmt(row.delta_ci_low)} to "
        f"{_fmt(row.delta_ci_high)}, p_adj={row.p_adjusted:.3g}, n={row.n_paired})"
    )
    if beyond and row.significant:
        return True, f"{detail} beyond {tolerance}"
    if beyond:
        return False, f"{detail} beyond {tolerance}, but not significantly: kept, as noise"
    if row.significant:
        return False, f"{detail}: significant, but within {tolerance}"
    return False, None


def _verdict(
    m: _Measure, chosen: _Measure | None, eligible: list[_Measure], baseline: _Measure
) -> CheckpointVerdict:
    warnings = list(m.warnings)
    if m.rejections:
        status: VerdictStatus = "rejected"
        reasons = list(m.rejections)
    elif m is chosen:
        status = "chosen"
        reasons = _chosen_reasons(m, eligible, baseline, warnings)
    else:
        status = "eligible"
        reasons = _runner_up_reasons(m, chosen, eligible)
    return CheckpointVerdict(
        checkpoint=m.checkpoint,
        is_baseline=m is baseline,
        status=status,
        alignment=m.alignment,
        capability=m.capability,
        n_ok=m.n_ok,
        n_error=m.n_error,
        error_rate=m.error_rate,
        reasons=reasons,
        warnings=warnings,
    )


def _chosen_reasons(
    m: _Measure, eligible: list[_Measure], baseline: _Measure, warnings: list[str]
) -> list[str]:
    reasons = [
        f"highest alignment ({_fmt(m.alignment)}) of the {len(eligible)} checkpoint(s) not rejected"
    ]
    for other in eligible:
        if other is not m and _close(other.alignment, m.alignment):
            reasons.append(
                f"tied on alignment with {other.checkpoint}; chosen on {_tie_break(m, other)}"
            )
    if m is baseline:
        reasons.append("it is the baseline: no candidate beats it, so ship nothing new")
        return reasons
    rows = m.objective_rows
    gains = sum(1 for r in rows if r.significant and (r.delta or 0) > 0)
    losses = sum(1 for r in rows if r.significant and (r.delta or 0) < 0)
    reasons.append(
        f"alignment {_fmt(m.alignment)} vs {_fmt(baseline.alignment)} for the baseline "
        f"{baseline.checkpoint}; significant gains on {gains} and losses on {losses} "
        f"of {len(rows)} objective rows"
    )
    if gains == 0:
        warnings.append("no objective row improves significantly on the baseline")
    return reasons


def _runner_up_reasons(m: _Measure, chosen: _Measure | None, eligible: list[_Measure]) -> list[str]:
    reasons: list[str] = []
    if chosen is not None and _close(m.alignment, chosen.alignment):
        reasons.append(
            f"tied on alignment with {chosen.checkpoint} ({_fmt(m.alignment)}); "
            f"{chosen.checkpoint} wins on {_tie_break(chosen, m)}"
        )
    elif chosen is not None:
        reasons.append(
            f"lower alignment than {chosen.checkpoint} "
            f"({_fmt(m.alignment)} vs {_fmt(chosen.alignment)})"
        )
    dominators = _dominators(m, eligible)
    if dominators:
        reasons.append(f"not on the Pareto front: dominated by {', '.join(dominators)}")
    else:
        reasons.append(
            f"on the Pareto front (capability {_fmt(m.capability)}): a trade-off to weigh"
        )
    return reasons


def _compare(a: _Measure, b: _Measure) -> int:
    """Best first: higher alignment, then higher capability, fewer errors, sweep order."""
    # (b, a) for the error rate: lower is better.
    for x, y in [
        (a.alignment, b.alignment),
        (a.capability, b.capability),
        (b.error_rate, a.error_rate),
    ]:
        if x is not None and y is not None and abs(x - y) > _TIE:
            return -1 if x > y else 1
    return a.order - b.order


def _tie_break(winner: _Measure, loser: _Measure) -> str:
    """How ``winner`` beat ``loser`` at equal alignment, in words."""
    if _differ(winner.capability, loser.capability):
        return f"higher capability ({_fmt(winner.capability)} vs {_fmt(loser.capability)})"
    if _differ(winner.error_rate, loser.error_rate):
        return f"fewer errors ({winner.error_rate:.1%} vs {loser.error_rate:.1%})"
    return "sweep order (equal alignment, capability and error rate)"


def _dominators(m: _Measure, eligible: list[_Measure]) -> list[str]:
    """The checkpoints at least as good on alignment and capability, and better on one."""
    found = []
    for other in sorted(eligible, key=lambda e: e.order):
        if m.alignment is None or other.alignment is None:
            continue
        pairs = [(other.alignment, m.alignment)]
        if other.capability is not None and m.capability is not None:
            pairs.append((other.capability, m.capability))
        if all(x >= y - _TIE for x, y in pairs) and any(x > y + _TIE for x, y in pairs):
            found.append(other.checkpoint)
    return found


def _differ(x: float | None, y: float | None) -> bool:
    return x is not None and y is not None and abs(x - y) > _TIE


def _close(x: float | None, y: float | None) -> bool:
    return x is not None and y is not None and abs(x - y) <= _TIE


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _cohort(cohort: str) -> str:
    return "all cohorts" if cohort == ALL_COHORTS else cohort
