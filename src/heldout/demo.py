"""The main job: the whole flow, offline, on the embedded defaults.

Three checkpoints of an example RLAIF run (``sft``, ``rlaif-step-500``,
``rlaif-step-1000``) answer about 60 held-out prompts in four cohorts. The shipped
sweep (``examples/demo_sweep.yaml``) runs them through a RegressionEval: every
evaluator judges the cohorts it applies to with the embedded local judge, the scores
go to the store as they come, the checkpoints are compared with the ``sft`` baseline,
and one is chosen to ship. The HTML report shows it all. A second run is served from
the store and the response cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from heldout.config import DEFAULT_LOCAL_JUDGE, Settings
from heldout.examples import DEMO_SWEEP
from heldout.regress import RegressionEval, RegressionResult
from heldout.reports import write_regression_report
from heldout.runner import Progress, RunSummary
from heldout.store import CohortAggregate, Store
from heldout.sweep import load_sweep


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced.

    Attributes:
        summary: What the run computed, resumed and failed.
        aggregates: Per checkpoint, cohort and evaluator.
        regression: Deltas against ``sft``, regressions and fixes, the checkpoint to ship.
        report: The HTML report's path.
    """

    summary: RunSummary
    aggregates: list[CohortAggregate]
    regression: RegressionResult
    report: Path


async def run_demo(
    store: Store,
    *,
    settings: Settings,
    judge: str | None = None,
    report: Path | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Judge the example checkpoints, compare them with the baseline, write the report.

    Args:
        store: Where scores go; a rerun resumes the same run.
        settings: Judge settings.
        judge: The judge spec; default the embedded local judge.
        report: Where to write the HTML report; default ``.heldout/demo-report.html``.
        progress: Receives progress events.
    """
    sweep = load_sweep(DEMO_SWEEP)
    sweep = sweep.model_copy(update={"eval_judge": judge or DEFAULT_LOCAL_JUDGE})
    evaluation = RegressionEval(sweep, store=store, settings=settings)
    result = await evaluation.arun(progress=progress)
    if result.summary is None:  # pragma: no cover - arun always runs the runner
        raise RuntimeError("the demo's regression run produced no summary")
    path = write_regression_report(
        store,
        result,
        report or Path(".heldout") / "demo-report.html",
        title="heldout demo: three RLAIF checkpoints on held-out cohorts",
    )
    return DemoResult(
        summary=result.summary,
        aggregates=store.aggregate(result.run_id),
        regression=result,
        report=path,
    )
