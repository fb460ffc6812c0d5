"""Labeling at scale: every pair of candidates through the runner, then labels out."""

from __future__ import annotations

from collections.abc import Sequence

from heldout.config import Settings, load_settings
from heldout.labeling._candidates import Candidates
from heldout.labeling._labeler import ConstitutionalPreference
from heldout.labeling._labels import LabelSet, labels_from_scores
from heldout.runner import Progress, run_evaluation
from heldout.store import Store


async def label_preferences(
    candidates: Sequence[Candidates],
    labeler: ConstitutionalPreference | None = None,
    *,
    store: Store,
    settings: Settings | None = None,
    judge: str | None = None,
    run_id: str | None = None,
    min_margin: float = 0.1,
    missing: dict[str, str] | None = None,
    workers: int = 64,
    progress: Progress | None = None,
) -> LabelSet:
    """Label every pair of candidate responses with a constitution-guided judge.

    Runs on the evaluation runner: every comparison is stored as it is judged, every
    call cached, and a rerun resumes where the last one stopped with no repeated call.

    Args:
        candidates: Prompts with two or more responses each.
        labeler: The labeler (default: the shipped constitution, a random principle per
            comparison).
        store: Where the labels' scores and the judge's replies go.
        settings: Judge settings (default: from ``heldout.toml`` and env).
        judge: The labeler's judge spec (default: the labeler's own, else the eval judge).
        run_id: The run to write or resume (default: derived from the pairs and labeler).
        min_margin: Labels with |probability - 0.5| below this are low-confidence.
        missing: Prompts left without a pair (e.g. failed sampling), reported as such.
        workers: The most comparisons in progress at once.
        progress: Receives progress events.

    Returns:
        The labels, the comparisons that failed, and the prompts left without a pair.
    """
    settings = settings or load_settings()
    labeler = labeler or ConstitutionalPreference()
    pairs = [sample for row in candidates for sample in row.pair_samples()]
    summary = await run_evaluation(
        pairs,
        [labeler],
        store=store,
        settings=settings,
        judge=judge,
        run_id=run_id,
        name="label",
        kind="label",
        workers=workers,
        progress=progress,
    )
    scores = store.scores(summary.run_id, evaluator=labeler.name)
    result = labels_from_scores(scores, pairs, min_margin=min_margin)
    result.missing = dict(missing or {})
    result.run_id = summary.run_id
    return result
