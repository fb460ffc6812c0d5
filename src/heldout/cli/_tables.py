"""Terminal tables of results. Model text is printed without markup interpretation."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

from heldout._doctor import Check
from heldout.runner import RunSummary
from heldout.store import CohortAggregate


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
