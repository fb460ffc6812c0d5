"""The ``heldout`` command line. It parses arguments, calls the public API, prints."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from heldout._doctor import run_checks
from heldout._errors import HeldoutError
from heldout.cli._agree import agree_command
from heldout.cli._label import label_command
from heldout.cli._options import (
    BackendOpt,
    ConfigOpt,
    EvaluatorOpt,
    RayAddressOpt,
    RunsOpt,
    VerdictsOpt,
    judged_verdicts,
    run_settings,
)
from heldout.cli._serve import ingest_command, serve_command
from heldout.cli._tables import (
    aggregates_table,
    checks_table,
    overfit_view,
    regression_view,
    selection_view,
    summary_line,
)
from heldout.config import load_settings
from heldout.data import Dataset
from heldout.evaluators import Criteria
from heldout.runner import RichProgress, run_evaluation
from heldout.store import Store

app = typer.Typer(
    help="Held-out evaluation of LLM policies trained with AI feedback.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)


@app.command()
def doctor(
    config: ConfigOpt = None,
    offline: Annotated[bool, typer.Option(help="Do not probe judge endpoints.")] = False,
) -> None:
    """Check config, store, judge endpoints and the embedded model; print the fixes."""
    checks = run_checks(config, probe_endpoints=not offline)
    console.print(checks_table(checks))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command("eval")
def eval_(
    data: Annotated[Path, typer.Argument(help="JSONL, CSV or Parquet file of samples.")],
    criteria: Annotated[
        str, typer.Option(help="The criterion each output is judged against.")
    ] = "The response answers the request correctly, and every claim it makes is supported.",
    judge: Annotated[
        str | None, typer.Option(help="Judge spec, e.g. openai:gpt-4o-mini (default: eval judge).")
    ] = None,
    cohort: Annotated[str | None, typer.Option(help="Cohort for rows that name none.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Run id to write or resume.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Rows in progress at once.")] = 64,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Judge every row of DATA and print mean, n, errors and fail rate per cohort."""
    settings = run_settings(config, backend, ray_address)
    dataset = Dataset.load(data, cohort=cohort)
    store = Store.open(settings.db_url)
    try:
        with RichProgress(console) as progress:
            summary = asyncio.run(
                run_evaluation(
                    dataset,
                    [Criteria(criteria)],
                    store=store,
                    settings=settings,
                    judge=judge,
                    run_id=run_id,
                    name=data.name,
                    workers=workers,
                    progress=progress,
                )
            )
        console.print(aggregates_table(store.aggregate(summary.run_id), f"{data.name}"))
        console.print(summary_line(summary))
    finally:
        store.close()


@app.command()
def demo(
    judge: Annotated[
        str | None, typer.Option(help="Judge spec (default: the embedded local judge).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="HTML report path (default .heldout/demo-report.html).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Run the whole flow offline on the embedded judge: three example checkpoints.

    Held-out cohorts judged by every evaluator, compared with the baseline; a table per
    cohort and checkpoint, the checkpoint to ship, and an HTML report.
    """
    from heldout.demo import run_demo  # scipy is heavy: only for the commands that use it

    console.print(checks_table(run_checks(config, probe_endpoints=False)))
    settings = load_settings(config)
    store = Store.open(settings.db_url)
    try:
        with RichProgress(console, "demo") as progress:
            result = asyncio.run(
                run_demo(store, settings=settings, judge=judge, report=report, progress=progress)
            )
        console.print(aggregates_table(result.aggregates, "demo: per cohort and checkpoint"))
        console.print(regression_view(result.regression.table))
        if result.regression.selection is not None:
            console.print(selection_view(result.regression.selection))
        console.print(summary_line(result.summary))
        console.print(f"report: {escape(str(result.report.resolve()))}")
    finally:
        store.close()


@app.command()
def regress(
    sweep: Annotated[Path, typer.Argument(help="The sweep YAML file.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for results.json, table.csv, report.html "
            "(default .heldout/regress-<name>)."
        ),
    ] = None,
    cohort: Annotated[
        str | None, typer.Option(help="Show this cohort's rows (default: all cohorts pooled).")
    ] = None,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Compare every checkpoint of SWEEP with its baseline and pick one to ship.

    Deltas with confidence intervals per cohort and axis, regressions and fixes, and the
    selection; JSON, CSV and HTML outputs.
    """
    from heldout.regress import RegressionEval  # scipy is heavy: only for this command
    from heldout.reports import write_regression_report

    settings = run_settings(config, backend, ray_address)
    store = Store.open(settings.db_url)
    try:
        evaluation = RegressionEval(sweep, store=store, settings=settings)
        with RichProgress(console, "judging") as progress:
            result = evaluation.run(progress=progress, outputs=progress)
        folder = out or Path(".heldout") / f"regress-{evaluation.sweep.name}"
        written = [
            result.write_json(folder / "results.json"),
            result.write_csv(folder / "table.csv"),
            write_regression_report(store, result, folder / "report.html"),
        ]
    finally:
        store.close()
    console.print(regression_view(result.table, cohort=cohort))
    if result.selection is not None:
        console.print(selection_view(result.selection))
    if result.overfitting is not None:
        console.print(overfit_view(result.overfitting))
    if result.summary is not None:
        console.print(summary_line(result.summary))
    for path in written:
        console.print(f"wrote {escape(str(path))}")


# -- spotcheck ------------------------------------------------------------------------

spotcheck_app = typer.Typer(
    help="Human spot-checks of the judges: draw a stratified sample of judged items for "
    "people to label, then score each judge against their labels.",
    no_args_is_help=True,
)
app.add_typer(spotcheck_app, name="spotcheck")


@spotcheck_app.command("sample")
def spotcheck_sample_command(
    run: RunsOpt,
    out: Annotated[Path, typer.Option(help="The file to label: .csv or .jsonl.")],
    n: Annotated[int, typer.Option(min=1, help="Items to draw.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the draw.")] = 0,
    evaluator: EvaluatorOpt = None,
    show_verdicts: Annotated[
        bool, typer.Option(help="Show the judges' verdicts to labelers (default hidden).")
    ] = False,
    verdicts: VerdictsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Draw N judged items, stratified by cohort and by the judges' verdicts, into a file
    with an empty human_label column for people to fill in."""
    from heldout.analysis import (
        samples_from_runs,
        spotcheck_sample,
        verdicts_from_sources,
        write_spotcheck,
    )
    from heldout.cli._tables import spotcheck_strata_view

    settings = load_settings(config)
    store = Store.open(settings.db_url)
    try:
        judged = verdicts_from_sources(store, run, files=verdicts or [], evaluator=evaluator)
        samples = samples_from_runs(store, run)
    finally:
        store.close()
    sample = spotcheck_sample(judged, samples, n=n, seed=seed, show_verdicts=show_verdicts)
    path = write_spotcheck(sample, out)
    console.print(spotcheck_strata_view(sample))
    console.print(
        f"wrote {escape(str(path))}: fill in human_label (pass/fail or the judges' labels, "
        "or skip), then run heldout spotcheck score with the same --run options"
    )


@spotcheck_app.command("score")
def spotcheck_score_command(
    labels: Annotated[Path, typer.Argument(help="The spot-check file, labelled.")],
    run: RunsOpt,
    evaluator: EvaluatorOpt = None,
    verdicts: VerdictsOpt = None,
    confidence: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="Confidence of the intervals.")
    ] = 0.95,
    config: ConfigOpt = None,
) -> None:
    """Each judge's accuracy against the human labels in LABELS, with Wilson intervals,
    overall and per cohort."""
    from heldout.analysis import spotcheck_score
    from heldout.cli._tables import spotcheck_view

    judged = judged_verdicts(config, run, verdicts, evaluator)
    console.print(spotcheck_view(spotcheck_score(labels, judged, confidence=confidence)))


app.command("agree")(agree_command)
app.command("label")(label_command)
app.command("serve")(serve_command)
app.command("ingest")(ingest_command)


def main() -> None:
    """Entry point of the ``heldout`` command."""
    try:
        app()
    except HeldoutError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise SystemExit(2) from exc
