"""The main job: the whole flow, offline, on the embedded defaults.

Three checkpoints of an example RLAIF run (``sft``, ``rlaif-step-500``,
``rlaif-step-1000``) answer about 60 held-out prompts in four cohorts. Every evaluator
judges the cohorts it applies to, with the embedded local judge; the scores go to the
store as they come, and an HTML report compares the checkpoints. A second run is
served from the store and the response cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from heldout.config import DEFAULT_LOCAL_JUDGE, Settings
from heldout.evaluators import (
    ContentSafety,
    CustomEvaluation,
    Evaluator,
    Groundedness,
    Refusal,
    TaskCompletion,
    Toxicity,
)
from heldout.examples import load_demo_checkpoints
from heldout.reports import write_html_report
from heldout.runner import Progress, RunSummary, run_evaluation
from heldout.store import CohortAggregate, Store

DEMO_RUN_ID = "demo"


def demo_evaluators(judge: str, settings: Settings) -> list[Evaluator]:
    """Each evaluator on the cohorts where it means something.

    Groundedness needs a context (the honesty cohort); safety and refusal matter on
    harmful-looking prompts; task completion on helpfulness; the constitution grades
    the regression cohort of known RLAIF failure modes on every axis.
    """
    return [
        TaskCompletion(cohorts={"helpfulness"}),
        Groundedness(cohorts={"honesty"}),
        ContentSafety(cohorts={"harmlessness"}),
        Refusal(cohorts={"harmlessness", "regression"}),
        Toxicity(cohorts={"harmlessness"}),
        CustomEvaluation(cohorts={"regression"}, judge=judge, settings=settings),
    ]


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced.

    Attributes:
        summary: What the run computed, resumed and failed.
        aggregates: Per checkpoint, cohort and evaluator.
        report: The HTML report's path.
    """

    summary: RunSummary
    aggregates: list[CohortAggregate]
    report: Path


async def run_demo(
    store: Store,
    *,
    settings: Settings,
    judge: str | None = None,
    report: Path | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Judge the example checkpoints and write the report.

    Args:
        store: Where scores go (the run id is ``demo``; a rerun resumes it).
        settings: Judge settings.
        judge: The judge spec; default the embedded local judge.
        report: Where to write the HTML report; default ``.heldout/demo-report.html``.
        progress: Receives progress events.
    """
    spec = judge or DEFAULT_LOCAL_JUDGE
    checkpoints = load_demo_checkpoints()
    summary = await run_evaluation(
        checkpoints,
        demo_evaluators(spec, settings),
        store=store,
        settings=settings,
        judge=spec,
        run_id=DEMO_RUN_ID if judge is None else None,
        name="demo",
        progress=progress,
    )
    path = write_html_report(
        store,
        summary.run_id,
        report or Path(".heldout") / "demo-report.html",
        title="heldout demo: three RLAIF checkpoints on held-out cohorts",
    )
    return DemoResult(summary=summary, aggregates=store.aggregate(summary.run_id), report=path)
