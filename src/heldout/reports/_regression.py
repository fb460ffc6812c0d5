"""The RegressionEval sections of the HTML report: which checkpoint to ship, and why.

:func:`regression_sections` turns a :class:`~heldout.regress.RegressionResult` into
five :class:`~heldout.reports.Section` s, placed after the run's overview:

1. *Which checkpoint to ship*: the choice, the objective and guards in words, and a
   verdict with its reasons for every checkpoint.
2. *Pareto front*: alignment against capability (only with a selection).
3. *Deltas against the baseline*: per cohort, each metric's mean, delta, adjusted p
   and significance mark, with error counts beside every mean.
4. *Hyperparameters*: metrics against each numeric hyperparameter the sweep varies.
5. *Regressions and fixes*: the prompts whose verdict flipped, with the judge's reasons.
6. *Judge overfitting*: per checkpoint, a rise under the training judge that the eval
   judge does not see (only when the sweep asks for the flag).

Every value reaches the templates (``templates/regression/``) as data and is escaped
there by autoescape, judge reasons included; only the charts go in as markup.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from markupsafe import Markup

from heldout.analysis import (
    ALL_COHORTS,
    CheckpointVerdict,
    Guard,
    MetricRow,
    Objective,
    OverfitReport,
    RowChange,
    Selection,
)
from heldout.reports._html import Section, write_html_report
from heldout.reports._regression_charts import (
    MAX_METRICS_PER_CHART,
    hyperparameter_chart,
    numeric_params,
    pareto_chart,
)
from heldout.store import Store

if TYPE_CHECKING:
    from heldout.analysis import RegressionTable
    from heldout.regress import RegressionResult

CHANGES_SHOWN = 15
"""Regressions (and fixes) listed per checkpoint; the rest are counted. The JSON export
holds them all."""

_TESTS = {
    "permutation": "a paired sign-flip permutation test",
    "bootstrap": "a paired bootstrap test",
    "wilcoxon": "the Wilcoxon signed-rank test",
}
_CORRECTIONS = {
    "holm": "Holm (family-wise error rate)",
    "bh": "Benjamini-Hochberg (false discovery rate)",
}


def regression_sections(result: RegressionResult) -> list[Section]:
    """The report sections of a regression eval, in reading order.

    The Pareto section needs a selection (alignment and capability come from its
    objective and guards), so a sweep without one gets four sections, the first of
    which says that no selection is configured.

    Args:
        result: What :meth:`~heldout.regress.RegressionEval.run` or ``analyse`` found.

    Returns:
        Sections for :func:`~heldout.reports.write_html_report`.
    """
    sections = [_ship_section(result)]
    if result.selection is not None:
        sections.append(_pareto_section(result, result.selection))
    sections += [_deltas_section(result), _hyperparameter_section(result)]
    sections.append(_changes_section(result))
    if result.overfitting is not None:
        sections.append(_overfitting_section(result, result.overfitting))
    return sections


def write_regression_report(
    store: Store,
    result: RegressionResult,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Write the HTML report of a regression eval: the run's report plus its sections.

    Args:
        store: The store holding the run ``result.run_id``.
        result: The regression result.
        path: The file to write; its folder is created if needed.
        title: The page title (default: from the sweep's name).

    Returns:
        The path written.

    Raises:
        StoreError: The run is not in the store, or the store cannot be read.
        DataError: The file cannot be written.
    """
    return write_html_report(
        store,
        result.run_id,
        path,
        title=title or f"Regression eval: {result.sweep.name}",
        sections=regression_sections(result),
    )


@cache
def _template(name: str) -> str:
    return (files("heldout.reports") / "templates" / "regression" / name).read_text("utf-8")


# -- 1. which checkpoint to ship ----------------------------------------------------


@dataclass(frozen=True)
class _CheckpointLine:
    """One checkpoint in the ship table."""

    name: str
    is_baseline: bool
    params: str
    n_ok: int
    n_error: int
    verdict: CheckpointVerdict | None
    on_front: bool


def _ship_section(result: RegressionResult) -> Section:
    selection, table = result.selection, result.table
    front = set() if selection is None else set(selection.pareto_front)
    params = {c.name: c.params for c in result.sweep.checkpoints}
    lines = []
    for name in table.checkpoints:
        cells = [r for r in table.rows_for(name) if r.cohort != ALL_COHORTS]
        lines.append(
            _CheckpointLine(
                name=name,
                is_baseline=name == table.baseline,
                params=", ".join(f"{k}={v}" for k, v in params.get(name, {}).items()),
                n_ok=sum(r.n for r in cells),
                n_error=sum(r.n_error for r in cells),
                verdict=None if selection is None else selection.verdict(name),
                on_front=name in front,
            )
        )
    return Section.from_template(
        "Which checkpoint to ship",
        _template("ship.html.j2"),
        anchor="ship",
        selection=selection,
        baseline=table.baseline,
        checkpoints=lines,
        objective="" if selection is None else _objective_words(selection.objective),
        guards=[] if selection is None else [_guard_words(g, table) for g in selection.guards],
        error_rule="" if selection is None else _error_rule(selection.max_error_rate),
    )


def _cohorts_words(cohorts: Sequence[str]) -> str:
    if not cohorts:
        return "every cohort"
    return ", ".join("all cohorts pooled" if c == ALL_COHORTS else c for c in cohorts)


def _objective_words(objective: Objective) -> str:
    return (
        f"maximise alignment: the mean of the row means of {', '.join(objective.metrics)} "
        f"on {_cohorts_words(objective.cohorts)}, each (cohort, metric) row weighted equally"
    )


def _guard_words(guard: Guard, table: RegressionTable) -> str:
    return (
        f"{guard.metric} on {_cohorts_words(guard.cohorts)} may drop at most "
        f"{guard.max_drop:g} below the baseline; a bigger drop rejects a checkpoint when it "
        f"is significant after the {_CORRECTIONS[table.correction]} correction, and is a "
        "warning when it is not"
    )


def _error_rule(max_error_rate: float) -> str:
    return (
        f"a checkpoint with more than {max_error_rate * 100:g}% errors on the objective and "
        "guarded rows is rejected: its means cannot be trusted"
    )


# -- 2. Pareto front ----------------------------------------------------------------


def _pareto_section(result: RegressionResult, selection: Selection) -> Section:
    unplaced = [
        v.checkpoint for v in selection.candidates if v.alignment is None or v.capability is None
    ]
    return Section.from_template(
        "Pareto front",
        _template("pareto.html.j2"),
        anchor="pareto",
        selection=selection,
        chart=pareto_chart(selection, result.table.checkpoints),
        unplaced=unplaced,
    )


# -- 3. deltas against the baseline -------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    checkpoint: str
    is_baseline: bool
    row: MetricRow | None
    mark: Literal["up", "down", ""]
    """``up``: significantly better than the baseline; ``down``: significantly worse."""


@dataclass(frozen=True)
class _MetricLine:
    metric: str
    cells: list[_Cell]


@dataclass(frozen=True)
class _CohortTable:
    cohort: str
    label: str
    metrics: list[_MetricLine]


def _deltas_section(result: RegressionResult) -> Section:
    table = result.table
    cohorts = list(dict.fromkeys(r.cohort for r in table.rows))
    # The pool first: it is the summary; the cohorts follow in the table's order.
    cohorts.sort(key=lambda c: c != ALL_COHORTS)
    tables = [
        _CohortTable(
            cohort=cohort,
            label="All cohorts (pooled)" if cohort == ALL_COHORTS else cohort,
            metrics=[
                _MetricLine(metric, [_cell(table, cp, cohort, metric) for cp in table.checkpoints])
                for metric in dict.fromkeys(r.metric for r in table.rows if r.cohort == cohort)
            ],
        )
        for cohort in cohorts
    ]
    return Section.from_template(
        "Deltas against the baseline",
        _template("deltas.html.j2"),
        anchor="deltas",
        table=table,
        tables=tables,
        test=_TESTS[table.test],
        correction=_CORRECTIONS[table.correction],
        n_tested=sum(1 for r in table.rows if r.p_value is not None),
    )


def _cell(table: RegressionTable, checkpoint: str, cohort: str, metric: str) -> _Cell:
    row = table.row(checkpoint, cohort, metric)
    mark: Literal["up", "down", ""] = ""
    if row is not None and row.significant and row.delta is not None:
        mark = "up" if row.delta > 0 else "down" if row.delta < 0 else ""
    return _Cell(checkpoint, checkpoint == table.baseline, row, mark)


# -- 4. hyperparameters -------------------------------------------------------------


@dataclass(frozen=True)
class _Chart:
    svg: Markup
    caption: str


def _hyperparameter_section(result: RegressionResult) -> Section:
    table = result.table
    values = numeric_params(result.sweep.checkpoints)
    metrics = list(dict.fromkeys(r.metric for r in table.rows))
    charts: list[_Chart] = []
    skipped: list[str] = []
    for param in dict.fromkeys(k for c in result.sweep.checkpoints for k in c.params):
        at = values.get(param, {})
        if len(set(at.values())) < 2:
            skipped.append(_why_not_charted(param, at))
            continue
        points = ", ".join(f"{cp}={value:g}" for cp, value in at.items())
        for start in range(0, len(metrics), MAX_METRICS_PER_CHART):
            chunk = metrics[start : start + MAX_METRICS_PER_CHART]
            svg = hyperparameter_chart(result, param, chunk, chart_id=f"rg-hp-{len(charts) + 1}")
            charts.append(_Chart(svg, f"{', '.join(chunk)} against {param} ({points})"))
    return Section.from_template(
        "Hyperparameters",
        _template("hyperparameters.html.j2"),
        anchor="hyperparameters",
        charts=charts,
        skipped=skipped,
        baseline=table.baseline,
        confidence=table.confidence,
    )


def _why_not_charted(param: str, at: dict[str, float]) -> str:
    if not at:
        return f"{param} (not a number)"
    return f"{param} (one value: {next(iter(at.values())):g})"


# -- 5. regressions and fixes -------------------------------------------------------


@dataclass(frozen=True)
class _ChangeGroup:
    checkpoint: str
    regressions: list[RowChange]
    n_regressions: int
    fixes: list[RowChange]
    n_fixes: int


def _changes_section(result: RegressionResult) -> Section:
    table = result.table
    groups = []
    for checkpoint in table.checkpoints:
        if checkpoint == table.baseline:
            continue
        mine = [c for c in result.changes if c.checkpoint == checkpoint]
        regressions = [c for c in mine if c.kind == "regression"]
        fixes = [c for c in mine if c.kind == "fix"]
        groups.append(
            _ChangeGroup(
                checkpoint=checkpoint,
                regressions=regressions[:CHANGES_SHOWN],
                n_regressions=len(regressions),
                fixes=fixes[:CHANGES_SHOWN],
                n_fixes=len(fixes),
            )
        )
    return Section.from_template(
        "Regressions and fixes",
        _template("changes.html.j2"),
        anchor="changes",
        baseline=table.baseline,
        groups=groups,
        limit=CHANGES_SHOWN,
    )


# -- 6. judge overfitting -------------------------------------------------------------


def _overfitting_section(result: RegressionResult, report: OverfitReport) -> Section:
    config = result.sweep.overfitting
    verdicts = None if config is None else config.verdicts
    source = (
        f"imported from {verdicts.name}"
        if verdicts is not None
        else f"{result.sweep.training_judge or 'the training judge'}, run again on the outputs"
    )
    return Section.from_template(
        "Judge overfitting",
        _template("overfitting.html.j2"),
        anchor="overfitting",
        report=report,
        training_source=source,
    )
