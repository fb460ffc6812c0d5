"""Where judges' verdicts come from: stored scores, the runs of a store, imported files.

Each source becomes one list of :class:`~heldout.data.JudgeVerdict` per judge, the
input of :func:`~heldout.analysis.judge_agreement`, :func:`~heldout.analysis.jury`
and the spot-check functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from heldout._errors import ConfigError
from heldout.data import JudgeVerdict, load_verdicts
from heldout.data._loaders import StrPath
from heldout.evaluators import Score
from heldout.store import Store, StoredSample, StoredScore


def verdicts_from_scores(
    scores: Iterable[Score],
    *,
    judge: str | None = None,
    evaluator: str | None = None,
    axis: str | None = None,
    threshold: float = 0.5,
) -> list[JudgeVerdict]:
    """Stored (or fresh) scores as verdicts.

    ``ok`` scores become ok verdicts: the score is ``value``, the label ``pass`` or
    ``fail`` from ``passed`` (or ``value >= threshold`` when it has none), the
    probability ``metadata["p_yes"]`` when the evaluator recorded one. ``error``
    scores become error verdicts. ``skipped`` scores are not verdicts (the sample
    lacked what the evaluator needs) and are left out; the item then counts as
    missing for this judge.

    Args:
        scores: The scores; :class:`~heldout.store.StoredScore` carries its checkpoint.
        judge: The judge's name (default: each score's judge spec).
        evaluator: Only this evaluator's scores.
        axis: The axis to file them under (default: the evaluator's name).
        threshold: The pass mark for scores without a ``passed`` verdict.
    """
    out: list[JudgeVerdict] = []
    for s in scores:
        if s.status == "skipped" or (evaluator is not None and s.evaluator != evaluator):
            continue
        common: dict[str, Any] = {
            "id": s.sample_id,
            "cohort": s.cohort,
            "axis": axis or s.evaluator,
            "checkpoint": s.checkpoint if isinstance(s, StoredScore) else None,
            "judge": judge if judge is not None else s.judge,
            "reason": s.reason,
        }
        if s.status == "error" or s.value is None:
            message = s.error or f"{s.error_kind or 'error'} (no value)"
            out.append(JudgeVerdict(status="error", error=message, **common))
            continue
        passed = s.passed if s.passed is not None else s.value >= threshold
        p_yes = s.metadata.get("p_yes")
        probability = float(p_yes) if isinstance(p_yes, int | float) else None
        out.append(
            JudgeVerdict(
                score=s.value, label="pass" if passed else "fail", probability=probability, **common
            )
        )
    return out


def verdicts_from_runs(
    store: Store,
    run_ids: Iterable[str],
    *,
    evaluator: str | None = None,
    threshold: float = 0.5,
) -> dict[str, list[JudgeVerdict]]:
    """Each run's stored scores as one judge's verdicts.

    A run is named after its judge spec when all its scores share one, else after
    its id; two runs with the same judge spec are told apart by their ids.

    Args:
        store: The store holding the runs.
        run_ids: The runs, one per judge.
        evaluator: Only this evaluator's scores (default: every evaluator, each an axis).
        threshold: The pass mark for scores without a ``passed`` verdict.

    Raises:
        ConfigError: A run is named twice, is not in the store, or has no scores (of
            ``evaluator``).
    """
    out: dict[str, list[JudgeVerdict]] = {}
    ids = list(run_ids)
    if len(set(ids)) != len(ids):
        raise ConfigError(f"a run is named twice in {ids}; give each judge's run once")
    for run_id in ids:
        if store.get_run(run_id) is None:
            known = ", ".join(r.id for r in store.list_runs()[:10]) or "none"
            raise ConfigError(f"no run {run_id!r} in the store. Recent runs: {known}")
        scores = store.scores(run_id, evaluator=evaluator)
        if not scores:
            present = sorted({s.evaluator for s in store.scores(run_id)})
            which = f" of evaluator {evaluator!r}" if evaluator is not None else ""
            raise ConfigError(
                f"run {run_id!r} has no scores{which}. "
                f"Evaluators with scores: {', '.join(present) or 'none'}"
            )
        specs = {s.judge for s in scores if s.judge}
        name = specs.pop() if len(specs) == 1 else run_id
        if name in out:
            name = f"{name} ({run_id})"
        out[name] = verdicts_from_scores(scores, judge=name, threshold=threshold)
    return out


def verdicts_from_sources(
    store: Store,
    run_ids: Iterable[str],
    *,
    files: Iterable[StrPath] = (),
    evaluator: str | None = None,
) -> dict[str, list[JudgeVerdict]]:
    """The verdicts of stored runs (see :func:`verdicts_from_runs`) and of imported
    files (see :func:`~heldout.data.load_verdicts`), one judge per run or file.

    A file's judge is named after the file's stem; its rows without an axis get
    ``evaluator`` (or ``overall``), so they match the runs' items.

    Raises:
        ConfigError: As for :func:`verdicts_from_runs`, or two judges share a name.
        DataError: A file cannot be read; see :func:`~heldout.data.load_verdicts`.
    """
    judged = verdicts_from_runs(store, run_ids, evaluator=evaluator)
    for file in files:
        name = Path(file).stem
        if name in judged:
            raise ConfigError(f"two judges are named {name!r}; rename the file {file}")
        judged[name] = load_verdicts(file, judge=name, axis=evaluator or "overall")
    return judged


def samples_from_runs(store: Store, run_ids: Iterable[str]) -> list[StoredSample]:
    """The samples of the runs, each (checkpoint, id) once (the first run's copy)."""
    seen: dict[tuple[str | None, str], StoredSample] = {}
    for run_id in run_ids:
        for sample in store.samples(run_id):
            seen.setdefault((sample.checkpoint, sample.id), sample)
    return list(seen.values())
