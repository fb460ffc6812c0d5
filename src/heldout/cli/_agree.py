"""``heldout agree``: how far the judges of stored runs and imported files agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast, get_args

import typer
from rich.console import Console
from rich.markup import escape

from heldout._errors import ConfigError
from heldout.cli._options import ConfigOpt, EvaluatorOpt, RunsOpt, VerdictsOpt, judged_verdicts

console = Console()


def agree_command(
    run: RunsOpt,
    verdicts: VerdictsOpt = None,
    evaluator: EvaluatorOpt = None,
    level: Annotated[
        str,
        typer.Option(
            help="The scale of Krippendorff's alpha: nominal (labels), or ordinal, interval "
            "or ratio (scores)."
        ),
    ] = "nominal",
    confidence: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="Confidence of the intervals.")
    ] = 0.95,
    show: Annotated[
        int, typer.Option(min=0, help="Disagreements to print, with every judge's reason.")
    ] = 10,
    out: Annotated[
        Path | None,
        typer.Option(help="Write every disagreement (.csv or .jsonl), with each judge's reason."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Agreement between two or more judges on the same items (stored runs, e.g. the eval
    judge's, and imported verdicts, e.g. the training judge's): disagreement rate, Cohen's
    kappa and Krippendorff's alpha per axis and cohort, with bootstrap intervals, and the
    items they disagree on."""
    from heldout.analysis import Level, judge_agreement
    from heldout.analysis import write_disagreements as write
    from heldout.cli._tables import agreement_view, disagreements_view

    levels = get_args(Level)
    if level not in levels:
        raise ConfigError(f"--level must be one of {', '.join(levels)}, not {level!r}")
    judged = judged_verdicts(config, run, verdicts, evaluator)
    report = judge_agreement(judged, level=cast(Level, level), confidence=confidence)
    console.print(agreement_view(report))
    if show and report.disagreements:
        console.print(disagreements_view(report, limit=show))
    if out is not None:
        path = write(report, out)
        console.print(f"wrote {len(report.disagreements)} disagreements to {escape(str(path))}")
