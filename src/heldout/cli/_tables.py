"""Terminal tables of results. Model text is printed without markup interpretation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from heldout._doctor import Check
from heldout.runner import RunSummary
from heldout.store import CohortAggregate

if TYPE_CHECKING:  # scipy, under heldout.analysis, takes a second to import
    from heldout.analysis import (
        AgreementReport,
        MetricRow,
        OverfitReport,
        RegressionTable,
        Selection,
        SpotCheckReport,
        SpotCheckSample,
    )


def aggregates_table(rows: Sequence[CohortAggregate], title: str) -> Table:
    """Mean, n, errors and fail rate per checkpoint, cohort and evaluator."""
    table = Table(title=title, title_justify="left")
    show_checkpoint = any(r.checkpoint for r in rows)
    if show_checkpoint:
        table.add_column("checkpoint")
    for name in ("cohort", "evaluator"):
        table.add_column(name)
    for name in ("mean", "n", "errors", "skipped", "fail rate"):
        table.add_column(name, justify="right")
    for r in rows:
        mean = "-" if r.mean is None else f"{r.mean:.3f}"
        fail = "-" if r.fail_rate is None else f"{r.fail_rate:.0%}"
        errors = f"[red]{r.n_error}[/red]" if r.n_error else "0"
        cells = [
            escape(r.cohort),
            escape(r.evaluator),
            mean,
            str(r.n_ok),
            errors,
            str(r.n_skipped),
            fail,
        ]
        table.add_row(*([escape(r.checkpoint or "-")] if show_checkpoint else []), *cells)
    return table


def summary_line(summary: RunSummary) -> str:
    """One line: what was resumed, computed, failed and paid for."""
    calls = summary.judge_calls
    hits = sum(s.cache_hits for s in summary.judges.values())
    cost = sum(s.cost_usd for s in summary.judges.values())
    tokens = sum(s.prompt_tokens + s.completion_tokens for s in summary.judges.values())
    text = (
        f"run {summary.run_id}: {summary.computed} scores computed, {summary.resumed} resumed "
        f"from the store, {summary.errors} errors; {calls} judge calls, {hits} cache hits, "
        f"{tokens} tokens"
    )
    return text + (f", ${cost:.4f}" if cost else "")


def checks_table(checks: Sequence[Check]) -> Table:
    """The doctor's findings."""
    table = Table(title="heldout doctor", title_justify="left")
    for name in ("check", "status", "detail", "fix"):
        table.add_column(name)
    for c in checks:
        status = "[green]ok[/green]" if c.ok else "[red]missing[/red]"
        table.add_row(c.name, status, escape(c.detail), escape(c.fix))
    return table


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f" [{low:.2f}, {high:.2f}]"


def _delta_cell(row: MetricRow) -> str:
    if row.delta is None:
        return "-"
    text = f"{row.delta:+.3f}{_interval(row.delta_ci_low, row.delta_ci_high)}"
    if row.significant:
        return f"[green]▲ {text}[/green]" if row.delta > 0 else f"[red]▼ {text}[/red]"
    return text


def regression_view(table: RegressionTable, *, cohort: str | None = None) -> Table:
    """Per checkpoint and metric: mean with its interval, n, errors, fail rate, and the
    delta against the baseline with its interval and corrected p-value.

    Args:
        table: The regression table.
        cohort: Show this cohort's rows (default: the pooled ``*`` rows, and the rows of
            metrics seen in one cohort only).
    """
    title = (
        f"against {table.baseline}: {table.test} test, {table.correction} correction, "
        f"alpha {table.alpha:g}; ▲▼ significant"
    )
    view = Table(title=escape(title), title_justify="left")
    for name in ("checkpoint", "cohort", "metric"):
        view.add_column(name)
    for name in ("mean [CI]", "n", "errors", "fail rate", "delta [CI]", "p adj"):
        view.add_column(name, justify="right")
    for row in _shown(table, cohort):
        mean = "-" if row.mean is None else f"{row.mean:.3f}{_interval(row.ci_low, row.ci_high)}"
        view.add_row(
            escape(row.checkpoint),
            escape(row.cohort),
            escape(row.metric),
            mean,
            str(row.n),
            f"[red]{row.n_error}[/red]" if row.n_error else "0",
            "-" if row.fail_rate is None else f"{row.fail_rate:.0%}",
            _delta_cell(row),
            "-" if row.p_adjusted is None else f"{row.p_adjusted:.3g}",
        )
    return view


def _shown(table: RegressionTable, cohort: str | None) -> list[MetricRow]:
    if cohort is not None:
        return [r for r in table.rows if r.cohort == cohort]
    pooled = {r.metric for r in table.rows if r.cohort == "*"}
    return [r for r in table.rows if r.cohort == "*" or r.metric not in pooled]


def selection_view(selection: Selection) -> Table:
    """Every checkpoint's verdict: chosen, eligible or rejected, and why."""
    chosen = selection.chosen or "none qualifies"
    view = Table(title=escape(f"checkpoint to ship: {chosen}"), title_justify="left")
    for name in ("checkpoint", "status", "alignment", "capability", "errors", "why"):
        view.add_column(name, justify="right" if name in ("alignment", "capability") else "left")
    colours = {"chosen": "green", "eligible": "yellow", "rejected": "red"}
    for v in selection.candidates:
        name = v.checkpoint + (" (baseline)" if v.is_baseline else "")
        colour = colours.get(v.status, "white")
        view.add_row(
            escape(name),
            f"[{colour}]{v.status}[/{colour}]",
            "-" if v.alignment is None else f"{v.alignment:.3f}",
            "-" if v.capability is None else f"{v.capability:.3f}",
            "-" if v.error_rate is None else f"{v.error_rate:.0%}",
            escape("; ".join([*v.reasons, *v.warnings])),
        )
    return view


# -- the judges: agreement, overfitting, spot-checks ---------------------------------


def _ci(low: float | None, high: float | None, fmt: str = ".2f") -> str:
    return "" if low is None or high is None else f" [{low:{fmt}}, {high:{fmt}}]"


def agreement_view(report: AgreementReport) -> Table:
    """Per axis and cohort: items compared, errors, disagreement rate, kappa, alpha.

    With more than two judges, each pair's kappa names the judges by number, and the
    caption says which number is which judge.
    """
    number = {judge: str(i) for i, judge in enumerate(report.judges, start=1)}
    several = len(report.judges) > 2
    view = Table(
        title=f"agreement of {len(report.judges)} judges ({report.confidence:.0%} intervals)",
        title_justify="left",
        caption=escape("; ".join(f"{number[j]} = {j}" for j in report.judges)),
        caption_justify="left",
    )
    for name in ("axis", "cohort"):
        view.add_column(name)
    for name in ("n", "errors", "missing", "disagree [CI]", "kappa [CI]", "alpha [CI]"):
        view.add_column(name, justify="right")
    for row in report.rows:
        rate = row.disagreement_rate
        kappas = "\n".join(
            ("-" if k.kappa is None else f"{k.kappa:.2f}{_ci(k.ci_low, k.ci_high)}")
            + (f" ({number[k.judges[0]]}/{number[k.judges[1]]})" if several else "")
            for k in row.kappas
        )
        alpha = "-" if row.alpha is None else f"{row.alpha:.2f}"
        view.add_row(
            escape(row.axis),
            escape(row.cohort),
            str(row.n),
            f"[red]{row.n_error}[/red]" if row.n_error else "0",
            str(row.n_missing),
            "-" if rate is None else f"{rate:.0%}{_ci(row.rate_ci_low, row.rate_ci_high)}",
            escape(kappas or "-"),
            alpha + ("" if row.alpha is None else _ci(row.alpha_ci_low, row.alpha_ci_high)),
        )
    return view


def disagreements_view(report: AgreementReport, *, limit: int) -> Table:
    """The first ``limit`` items the judges disagree on, with each judge's label and
    reason (model text, escaped)."""
    shown = report.disagreements[:limit]
    total = len(report.disagreements)
    view = Table(
        title=f"{len(shown)} of {total} disagreements (--out writes them all)",
        title_justify="left",
        show_lines=True,
    )
    for name in ("item", "cohort", "axis"):
        view.add_column(name)
    for judge in report.judges:
        view.add_column(escape(judge), overflow="fold")
    for d in shown:
        item = d.id if d.checkpoint is None else f"{d.id} @ {d.checkpoint}"
        said = [
            f"[bold]{escape(d.labels.get(j, '-'))}[/bold] {escape(_clip(d.reasons.get(j, '')))}"
            for j in report.judges
        ]
        view.add_row(escape(item), escape(d.cohort), escape(d.axis), *said)
    return view


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def overfit_view(report: OverfitReport) -> Table:
    """Per checkpoint: the delta under each judge and the overfitting flag, with why."""
    view = Table(
        title=escape(f"judge overfitting against {report.baseline}: ⚑ flagged"),
        title_justify="left",
    )
    for name in ("checkpoint", "cohort", "metric"):
        view.add_column(name)
    for name in ("training delta [CI]", "eval delta [CI]"):
        view.add_column(name, justify="right")
    view.add_column("flag")
    view.add_column("why")
    for row in report.rows:
        training = "-" if row.training_delta is None else f"{row.training_delta:+.3f}"
        evaluated = "-" if row.eval_delta is None else f"{row.eval_delta:+.3f}"
        flag = {"flagged": "[red]⚑ flagged[/red]", "untested": "[yellow]untested[/yellow]"}
        view.add_row(
            escape(row.checkpoint),
            escape(row.cohort),
            escape(row.metric),
            training + _ci(row.training_ci_low, row.training_ci_high, "+.3f"),
            evaluated + _ci(row.eval_ci_low, row.eval_ci_high, "+.3f"),
            flag.get(row.status, "ok"),
            escape(row.reason),
        )
    return view


def spotcheck_strata_view(sample: SpotCheckSample) -> Table:
    """How many items each stratum (cohort, axis, verdict pattern) holds and gave."""
    title = (
        f"spot-check sample: {len(sample.items)} of {sample.n_population} items, seed "
        f"{sample.seed}"
        + (
            f"; {sample.n_without_sample} without a sample left out"
            if sample.n_without_sample
            else ""
        )
    )
    view = Table(title=escape(title), title_justify="left")
    view.add_column("stratum")
    view.add_column("items", justify="right")
    view.add_column("drawn", justify="right")
    for stratum in sample.strata:
        view.add_row(escape(stratum.name), str(stratum.size), str(stratum.drawn))
    return view


def spotcheck_view(report: SpotCheckReport) -> Table:
    """Each judge's accuracy against people, per cohort and overall (``*``)."""
    title = (
        f"judges against people: {report.n_labelled} labelled, {report.n_unlabelled} "
        f"unlabelled, {report.n_skipped} skipped ({report.confidence:.0%} Wilson intervals)"
    )
    view = Table(title=escape(title), title_justify="left")
    for name in ("judge", "cohort"):
        view.add_column(name)
    for name in ("n", "correct", "accuracy [CI]", "errors"):
        view.add_column(name, justify="right")
    for row in report.rows:
        accuracy = "-" if row.accuracy is None else f"{row.accuracy:.0%}"
        view.add_row(
            escape(row.judge),
            escape(row.cohort),
            str(row.n),
            str(row.n_correct),
            accuracy + ("" if row.accuracy is None else _ci(row.ci_low, row.ci_high)),
            f"[red]{row.n_error}[/red]" if row.n_error else "0",
        )
    return view
