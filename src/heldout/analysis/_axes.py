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

from heldout.store import StoredScore


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
