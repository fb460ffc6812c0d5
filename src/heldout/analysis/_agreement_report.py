"""Judge agreement: how often two or more judges agree on the same items, and where not.

Verdicts come as :class:`~heldout.data.JudgeVerdict` lists, one per judge: imported
training-judge files (:func:`~heldout.data.load_verdicts`), or stored scores of runs
(:func:`~heldout.analysis.verdicts_from_runs`). Items are matched by
``(checkpoint, id, axis)``.

An item is compared only where every judge gave an ``ok`` verdict. Items where a
judge errored are left out and counted (``n_error``, and per judge in ``errors``);
items some judge never judged are counted as ``n_missing``. Nothing is averaged in
as a 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from heldout._errors import ConfigError, DataError
from heldout.analysis._agreement import (
    AGREEMENT_RESAMPLES,
    AgreementEstimate,
    Level,
    Statistic,
    alpha_statistic,
    bootstrap,
    kappa_statistic,
    rate_statistic,
)
from heldout.analysis._records import write_records
from heldout.analysis._table import ALL_COHORTS
from heldout.data import JudgeVerdict
from heldout.data._loaders import StrPath

_Key = tuple[str | None, str, str]


class PairKappa(BaseModel):
    """Cohen's kappa between two judges, with its bootstrap interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judges: tuple[str, str]
    """The two judges."""
    kappa: float | None
    """Cohen's kappa on the labels; None when undefined (one label throughout)."""
    ci_low: float | None
    """Lower bound of the bootstrap interval over items."""
    ci_high: float | None
    """Upper bound of that interval."""


class AgreementRow(BaseModel):
    """The agreement of the judges on one cohort (or all, ``"*"``) and one axis."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort: str
    """The held-out cohort, or ``"*"`` for all cohorts pooled."""
    axis: str
    """The axis or metric judged."""
    n: int
    """Items every judge gave an ok verdict on: the only ones compared."""
    n_error: int
    """Items left out because at least one judge errored on them."""
    n_missing: int
    """Items left out because some judge has no verdict on them (and none errored)."""
    errors: dict[str, int]
    """Error verdicts per judge."""
    disagreement_rate: float | None
    """Share of compared items whose labels are not all the same."""
    rate_ci_low: float | None
    """Lower bound of its bootstrap interval."""
    rate_ci_high: float | None
    """Upper bound of its bootstrap interval."""
    kappas: list[PairKappa]
    """Cohen's kappa of every pair of judges (one pair for two judges)."""
    alpha: float | None = None
    """Krippendorff's alpha of all judges, with more than two judges; else None."""
    alpha_ci_low: float | None = None
    """Lower bound of its bootstrap interval."""
    alpha_ci_high: float | None = None
    """Upper bound of its bootstrap interval."""


class Disagreement(BaseModel):
    """One item the judges did not agree on, with what each of them said."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """The item's id."""
    cohort: str
    """Its cohort."""
    axis: str
    """The axis judged."""
    checkpoint: str | None
    """The checkpoint whose output was judged, if any."""
    labels: dict[str, str]
    """Each judge's label."""
    scores: dict[str, float | None]
    """Each judge's score, when it gave one."""
    reasons: dict[str, str]
    """Each judge's reason."""


class AgreementReport(BaseModel):
    """Agreement per cohort and axis, and the items the judges disagree on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judges: list[str]
    """The judges, in the order given."""
    level: Level
    """The scale of alpha: nominal (labels) or ordinal, interval, ratio (scores)."""
    confidence: float
    """The confidence level of every interval."""
    n_resamples: int
    """Bootstrap resamples per interval."""
    seed: int
    """The resampling seed."""
    rows: list[AgreementRow]
    """Per axis (first seen), its cohorts (first seen), then ``"*"`` if several."""
    disagreements: list[Disagreement] = Field(default_factory=list)
    """Every compared item with differing labels, by axis, cohort, checkpoint, id."""

    def row(self, cohort: str, axis: str) -> AgreementRow | None:
        """The row of ``axis`` on ``cohort`` (``"*"``: pooled), or None."""
        return next((r for r in self.rows if r.cohort == cohort and r.axis == axis), None)


def judge_agreement(
    verdicts: Mapping[str, Iterable[JudgeVerdict]],
    *,
    level: Level = "nominal",
    confidence: float = 0.95,
    n_resamples: int = AGREEMENT_RESAMPLES,
    seed: int = 0,
) -> AgreementReport:
    """How far two or more judges agree, per cohort and axis, with bootstrap intervals.

    For each (cohort, axis), and pooled over cohorts for an axis seen in several: the
    disagreement rate, Cohen's kappa of each pair of judges (on the labels), and with
    more than two judges Krippendorff's alpha at ``level`` (nominal: on the labels;
    ordinal, interval, ratio: on the scores). An item's cohort is the one the first
    judge (in mapping order) that has it gives.

    Args:
        verdicts: Each judge's verdicts, by judge name.
        level: The scale of alpha.
        confidence: The confidence level of the intervals.
        n_resamples: Bootstrap resamples per interval (resampling items).
        seed: The resampling seed.

    Raises:
        ConfigError: Fewer than two judges, or a setting out of range.
        DataError: A judge has two verdicts on one item, or a numeric level meets a
            compared verdict without a score.
    """
    table = verdict_table(verdicts)
    judges = list(table)
    if len(judges) < 2:
        raise ConfigError(f"agreement needs two or more judges; got {judges or 'none'}")
    groups = _groups(table)
    rows: list[AgreementRow] = []
    disagreements: list[Disagreement] = []
    for (cohort, axis), keys in groups.items():
        compared = [k for k in keys if all(_ok(table[j].get(k)) for j in judges)]
        rows.append(_row(cohort, axis, keys, compared, table, level, confidence, n_resamples, seed))
        if cohort != ALL_COHORTS:
            disagreements.extend(_disagreements(compared, table, cohort))
    disagreements.sort(key=lambda d: (d.axis, d.cohort, d.checkpoint or "", d.id))
    return AgreementReport(
        judges=judges,
        level=level,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        rows=rows,
        disagreements=disagreements,
    )


def label_of(verdict: JudgeVerdict) -> str:
    """The verdict's label; a verdict with only a score is ``pass`` at 0.5 or above."""
    if verdict.label is not None:
        return verdict.label
    return "pass" if (verdict.score or 0.0) >= 0.5 else "fail"


def verdict_table(
    verdicts: Mapping[str, Iterable[JudgeVerdict]],
) -> dict[str, dict[_Key, JudgeVerdict]]:
    """Each judge's verdicts by item key.

    Raises:
        DataError: A judge has two verdicts on one item.
    """
    table: dict[str, dict[_Key, JudgeVerdict]] = {}
    for judge, items in verdicts.items():
        found: dict[_Key, JudgeVerdict] = {}
        for v in items:
            if v.key in found:
                raise DataError(
                    f"judge {judge!r} has two verdicts on item {v.id!r} (axis {v.axis!r}, "
                    f"checkpoint {v.checkpoint!r}); give one verdict per item and judge",
                    field="id",
                )
            found[v.key] = v
        table[judge] = found
    return table


def _groups(table: dict[str, dict[_Key, JudgeVerdict]]) -> dict[tuple[str, str], list[_Key]]:
    """Item keys per (cohort, axis), then per ("*", axis) for axes in several cohorts."""
    cohort_of: dict[_Key, str] = {}
    for found in table.values():
        for key, v in found.items():
            cohort_of.setdefault(key, v.cohort)
    groups: dict[tuple[str, str], list[_Key]] = {}
    for key, cohort in cohort_of.items():
        groups.setdefault((cohort, key[2]), []).append(key)
    by_axis: dict[str, list[str]] = {}
    for cohort, axis in groups:
        by_axis.setdefault(axis, []).append(cohort)
    ordered: dict[tuple[str, str], list[_Key]] = {}
    for axis, cohorts in by_axis.items():
        for cohort in cohorts:
            ordered[(cohort, axis)] = sorted(groups[(cohort, axis)], key=_sort_key)
        if len(cohorts) > 1:
            pooled = [k for c in cohorts for k in groups[(c, axis)]]
            ordered[(ALL_COHORTS, axis)] = sorted(pooled, key=_sort_key)
    return ordered


def _sort_key(key: _Key) -> tuple[str, str, str]:
    return (key[0] or "", key[1], key[2])


def _ok(v: JudgeVerdict | None) -> bool:
    return v is not None and v.status == "ok"


def _row(
    cohort: str,
    axis: str,
    keys: list[_Key],
    compared: list[_Key],
    table: dict[str, dict[_Key, JudgeVerdict]],
    level: Level,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> AgreementRow:
    judges = list(table)
    errors = {j: sum(1 for k in keys if _status(table[j].get(k)) == "error") for j in judges}
    n_error = sum(1 for k in keys if any(_status(table[j].get(k)) == "error" for j in judges))
    labels = [[label_of(table[j][k]) for j in judges] for k in compared]

    def estimate(statistic: Statistic) -> AgreementEstimate:
        return bootstrap(
            statistic, len(compared), confidence=confidence, n_resamples=n_resamples, seed=seed
        )

    rate = estimate(rate_statistic(labels))
    kappas = []
    for a, b in combinations(range(len(judges)), 2):
        k = estimate(kappa_statistic([r[a] for r in labels], [r[b] for r in labels]))
        kappas.append(
            PairKappa(judges=(judges[a], judges[b]), kappa=k.value, ci_low=k.low, ci_high=k.high)
        )
    alpha = None
    if len(judges) > 2:
        ratings = labels if level == "nominal" else _scores(compared, table, axis)
        alpha = estimate(alpha_statistic(ratings, level=level))
    return AgreementRow(
        cohort=cohort,
        axis=axis,
        n=len(compared),
        n_error=n_error,
        n_missing=len(keys) - len(compared) - n_error,
        errors=errors,
        disagreement_rate=rate.value,
        rate_ci_low=rate.low,
        rate_ci_high=rate.high,
        kappas=kappas,
        alpha=None if alpha is None else alpha.value,
        alpha_ci_low=None if alpha is None else alpha.low,
        alpha_ci_high=None if alpha is None else alpha.high,
    )


def _status(v: JudgeVerdict | None) -> str | None:
    return None if v is None else v.status


def _scores(
    compared: list[_Key], table: dict[str, dict[_Key, JudgeVerdict]], axis: str
) -> list[list[float | None]]:
    rows: list[list[float | None]] = []
    for key in compared:
        row: list[float | None] = []
        for judge, found in table.items():
            score = found[key].score
            if score is None:
                raise DataError(
                    f"judge {judge!r} gave item {key[1]!r} (axis {axis!r}) a label but no "
                    "score; a numeric alpha level needs scores: use level='nominal'",
                    field="score",
                )
            row.append(score)
        rows.append(row)
    return rows


def _disagreements(
    compared: list[_Key], table: dict[str, dict[_Key, JudgeVerdict]], cohort: str
) -> list[Disagreement]:
    out = []
    for key in compared:
        given = {j: found[key] for j, found in table.items()}
        labels = {j: label_of(v) for j, v in given.items()}
        if len(set(labels.values())) > 1:
            out.append(
                Disagreement(
                    id=key[1],
                    cohort=cohort,
                    axis=key[2],
                    checkpoint=key[0],
                    labels=labels,
                    scores={j: v.score for j, v in given.items()},
                    reasons={j: v.reason for j, v in given.items()},
                )
            )
    return out


def write_disagreements(report: AgreementReport, path: StrPath) -> Path:
    """Write every item the judges disagree on as CSV or JSON lines (by suffix): its id,
    checkpoint, cohort and axis, then each judge's label, score and reason
    (``label:<judge>``, ``score:<judge>``, ``reason:<judge>``).

    Raises:
        ConfigError: The suffix is neither ``.csv`` nor ``.jsonl``.
        DataError: The file cannot be written.
    """
    records = [
        {
            "id": d.id,
            "checkpoint": d.checkpoint,
            "cohort": d.cohort,
            "axis": d.axis,
            **{f"label:{j}": d.labels.get(j) for j in report.judges},
            **{f"score:{j}": d.scores.get(j) for j in report.judges},
            **{f"reason:{j}": d.reasons.get(j) for j in report.judges},
        }
        for d in report.disagreements
    ]
    return write_records(
        records, path, what="the disagreements", empty=["id", "checkpoint", "cohort", "axis"]
    )
