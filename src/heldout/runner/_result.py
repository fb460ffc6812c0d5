"""Evaluating a dataset in one call, and the result it gives back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console

from heldout.config import Settings, load_settings
from heldout.data._sample import Sample
from heldout.evaluators._base import Evaluator
from heldout.runner._progress import RichProgress
from heldout.runner._runner import RunSummary, run_evaluation
from heldout.store import CohortAggregate, Store, StoredScore

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class EvaluationResult:
    """Every score of one evaluation run, with per-cohort aggregates.

    Attributes:
        run_id: The run's id in the store (rerun it to resume).
        summary: What this call computed, resumed and failed, and the judge calls made.
        scores: One score per (checkpoint, sample, evaluator); errors included.
        aggregates: Per checkpoint, cohort and evaluator: mean over ``ok`` scores, n,
            errors, skipped and fail rate.
    """

    run_id: str
    summary: RunSummary
    scores: list[StoredScore]
    aggregates: list[CohortAggregate]

    @property
    def errors(self) -> list[StoredScore]:
        """The scores that are errors, with their kind and message."""
        return [s for s in self.scores if s.status == "error"]

    def aggregate(
        self, cohort: str, evaluator: str, checkpoint: str | None = None
    ) -> CohortAggregate | None:
        """The aggregate of one cell of the table, or None when there is none."""
        for a in self.aggregates:
            if (a.cohort, a.evaluator, a.checkpoint) == (cohort, evaluator, checkpoint):
                return a
        return None

    def to_pandas(self) -> pd.DataFrame:
        """One row per score: ids, cohort, checkpoint, evaluator, status, score, passed,
        reason, error kind and message, judge and template version."""
        import pandas as pd

        columns = [
            "sample_id", "cohort", "checkpoint", "evaluator", "status", "value", "passed",
            "reason", "error_kind", "error", "judge", "template_version",
        ]  # fmt: skip
        frame = pd.DataFrame(
            [[getattr(s, c) for c in columns] for s in self.scores], columns=columns
        )
        return frame.rename(columns={"value": "score"})

    def __repr__(self) -> str:
        return (
            f"EvaluationResult(run_id={self.run_id!r}, scores={len(self.scores)}, "
            f"errors={len(self.errors)}, judge_calls={self.summary.judge_calls})"
        )


async def evaluate_dataset(
    samples: Iterable[Sample] | Mapping[str, Iterable[Sample]],
    evaluators: Sequence[Evaluator],
    *,
    judge: str | None = None,
    store: Store | None = None,
    settings: Settings | None = None,
    run_id: str | None = None,
    name: str = "eval",
    workers: int = 64,
    progress: bool = True,
) -> EvaluationResult:
    """Run ``evaluators`` over every row, storing each score as it comes.

    Args:
        samples: The rows, or a mapping from checkpoint name to that checkpoint's rows.
        evaluators: The evaluators to run.
        judge: The judge spec for evaluators without one; default the eval judge.
        store: Where scores go; default the configured store (``HELDOUT_DB_URL``).
        settings: Endpoints and limits; default from ``heldout.toml`` and env.
        run_id: The run to write or resume; default derived from the inputs.
        name: A human name for the run.
        workers: Rows in progress at once.
        progress: Draw a progress bar on the terminal.
    """
    settings = settings or load_settings()
    own_store = store is None
    store = store or Store.open(settings.db_url)
    try:
        bar = RichProgress(Console(stderr=True), name) if progress else None
        if bar is not None:
            bar.__enter__()
        try:
            summary = await run_evaluation(
                samples,
                evaluators,
                store=store,
                settings=settings,
                judge=judge,
                run_id=run_id,
                name=name,
                workers=workers,
                progress=bar,
            )
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        return EvaluationResult(
            run_id=summary.run_id,
            summary=summary,
            scores=store.scores(summary.run_id),
            aggregates=store.aggregate(summary.run_id),
        )
    finally:
        if own_store:
            store.close()
