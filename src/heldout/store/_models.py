"""What the store hands back: run records, stored samples and scores, per-cohort aggregates."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from heldout.data._sample import Sample
from heldout.evaluators._score import Score

RunStatus = Literal["running", "done", "failed", "interrupted"]


def sample_key(sample_id: str, checkpoint: str | None = None) -> str:
    """The id of a sample's row within a run.

    A plain eval has one row per sample, keyed by its id. A regression eval has one
    row per (checkpoint, sample), keyed ``"{checkpoint}/{sample_id}"``.

    Example:
        >>> sample_key("q1"), sample_key("q1", checkpoint="step-200")
        ('q1', 'step-200/q1')
    """
    return sample_id if checkpoint is None else f"{checkpoint}/{sample_id}"


class RunRecord(BaseModel):
    """One run (an eval, a regression, a labeling session) as the store knows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """The caller-chosen, deterministic run id."""
    name: str
    """A human name for the run."""
    kind: str
    """What the run does: ``eval``, ``regress``, ``label``, ..."""
    config: dict[str, Any] = Field(default_factory=dict)
    """The configuration the run was started with."""
    status: RunStatus
    """``running`` until finished as ``done``, ``failed`` or ``interrupted``."""
    created_at: datetime
    """When the run was first begun (UTC)."""
    updated_at: datetime
    """When the run was last begun or finished (UTC)."""


class StoredScore(Score):
    """A :class:`Score` as stored: with the checkpoint it belongs to and its row key."""

    checkpoint: str | None = None
    """The checkpoint the scored output came from (regression evals), else None."""
    sample_key: str
    """The row id within the run; see :func:`sample_key`."""


class StoredSample(Sample):
    """A :class:`Sample` as stored for a run: with its checkpoint and its row key.

    ``id`` is the sample's own id, shared by every checkpoint's copy of the prompt;
    ``sample_key`` tells the copies apart.
    """

    checkpoint: str | None = None
    """The checkpoint whose output the row holds (regression evals), else None."""
    sample_key: str
    """The row id within the run; see :func:`sample_key`."""


class CohortAggregate(BaseModel):
    """The scores of one evaluator on one cohort (of one checkpoint), summed up.

    Only ``ok`` scores enter ``mean`` and ``fail_rate``; errors and skips are counted
    next to them, never averaged in.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: str | None
    """The checkpoint, or None for a plain eval."""
    cohort: str
    """The held-out cohort."""
    evaluator: str
    """The evaluator's name."""
    n_ok: int
    """Scores with status ``ok``."""
    n_error: int
    """Scores with status ``error`` (left out of ``mean`` and ``fail_rate``)."""
    n_skipped: int
    """Scores with status ``skipped``."""
    n_failed: int
    """``ok`` scores with ``passed`` false."""
    mean: float | None
    """The mean ``value`` of the ``ok`` scores; None when there are none."""
    fail_rate: float | None
    """``n_failed`` over the ``ok`` scores that have a ``passed`` verdict; None when
    there are none."""
