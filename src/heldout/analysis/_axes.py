"""Constitutional axes as metrics of their own.

A constitution evaluator (``custom:default``) writes one score per row, the mean over
its axes, and keeps each axis's score, verdict and reason in ``metadata["axes"]``. A
regression table wants each axis as a metric, so that "honesty dropped" shows up on
its own: :func:`with_axis_metrics` adds one score per axis, named
``"{evaluator}.{axis}"`` (``custom:default.honesty``). An ``error`` row stays an error
on every axis; it never becomes a score.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from heldout.store import Store, StoredScore


def axis_metric(evaluator: str, axis: str) -> str:
    """The metric name of ``axis`` of ``evaluator``: ``"custom:default.honesty"``."""
    return f"{evaluator}.{axis}"


def with_axis_metrics(
    scores: Iterable[StoredScore], axes: Mapping[str, Sequence[str]]
) -> Iterator[StoredScore]:
    """Every score, followed by one score per constitutional axis where it has axes.

    Args:
        scores: Stored scores of any evaluators.
        axes: For each constitution evaluator, its axis names; error and skipped rows
            are repeated on these axes with their status.

    Yields:
        The scores as given, and the per-axis scores of the evaluators in ``axes``.
    """
    for score in scores:
        yield score
        names = axes.get(score.evaluator)
        if not names:
            continue
        found = axis_results(score)
        for axis in names:
            metric = axis_metric(score.evaluator, axis)
            entry = found.get(axis)
            if score.status != "ok":
                yield score.model_copy(update={"evaluator": metric})
            elif entry is None:
                yield score.model_copy(
                    update={
                        "evaluator": metric,
                        "status": "error",
                        "value": None,
                        "passed": None,
                        "error_kind": "parse_error",
                        "error": f"the judge's reply has no result for axis {axis!r}",
                    }
                )
            else:
                yield score.model_copy(
                    update={
                        "evaluator": metric,
                        "value": entry["score"],
                        "passed": entry["passed"],
                        "reason": entry["reason"],
                    }
                )


def axis_results(score: StoredScore) -> dict[str, dict[str, Any]]:
    """The well-formed per-axis results of a score: ``{axis: {score, passed, reason}}``.

    An axis of ``metadata["axes"]`` is kept when its entry is a mapping with a numeric
    ``score``; ``passed`` is None unless it is a boolean.
    """
    raw = score.metadata.get("axes")
    if not isinstance(raw, Mapping):
        return {}
    found: dict[str, dict[str, Any]] = {}
    for axis, entry in raw.items():
        if not isinstance(entry, Mapping):
            continue
        value = entry.get("score")
        if isinstance(value, int | float) and not isinstance(value, bool):
            passed = entry.get("passed")
            found[str(axis)] = {
                "score": float(value),
                "passed": passed if isinstance(passed, bool) else None,
                "reason": str(entry.get("reason") or ""),
            }
    return found


def in_sweep_order(
    scores: Iterable[StoredScore], checkpoints: Sequence[str], axes: Mapping[str, Sequence[str]]
) -> list[StoredScore]:
    """Scores by checkpoint in the sweep's order, each followed by its per-axis scores.

    Args:
        scores: Stored scores of a sweep's run.
        checkpoints: The sweep's checkpoint names, in order (others go last).
        axes: For each constitution evaluator, its axis names (see
            :func:`with_axis_metrics`).
    """
    rank = {name: i for i, name in enumerate(checkpoints)}
    ordered = sorted(scores, key=lambda s: rank.get(s.checkpoint or "", len(rank)))
    return list(with_axis_metrics(ordered, axes))


def stored_axis_scores(
    store: Store, run_id: str, checkpoints: Sequence[str], axes: Mapping[str, Sequence[str]]
) -> list[StoredScore]:
    """A sweep run's stored scores, as :func:`in_sweep_order` gives them.

    Only the constitution evaluators' scores are read with their metadata (where the
    per-axis results are): leaving it out of the rest keeps a large sweep small.
    """
    stored = [s for s in store.scores(run_id, metadata=False) if s.evaluator not in axes]
    for name in axes:
        stored.extend(store.scores(run_id, evaluator=name))
    return in_sweep_order(stored, checkpoints, axes)


def run_axes(config: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The axes of each constitution evaluator of a stored run, from the run's config
    (``config["evaluators"]``, as the runner and RegressionEval record it)."""
    found: dict[str, tuple[str, ...]] = {}
    for entry in config.get("evaluators") or []:
        if not isinstance(entry, Mapping):
            continue
        name, axes = entry.get("name"), entry.get("axes")
        if isinstance(name, str) and isinstance(axes, list) and axes:
            found[name] = tuple(str(axis) for axis in axes)
    return found
