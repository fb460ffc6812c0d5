"""A score: one evaluator's verdict on one sample, or why there is none."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ScoreStatus = Literal["ok", "error", "skipped"]


class Score(BaseModel):
    """The result of one evaluator on one sample.

    Only ``ok`` scores carry ``value`` and ``passed`` and enter aggregates. An
    ``error`` score keeps the error's kind and message; it is counted and shown,
    never averaged in as 0 or FAIL.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_id: str
    """The sample's id."""
    cohort: str
    """The sample's cohort."""
    evaluator: str
    """The evaluator's name (e.g. ``groundedness`` or ``custom:harmlessness``)."""
    status: ScoreStatus
    """``ok``, ``error`` or ``skipped``."""
    value: float | None = None
    """The score in [0, 1] when ``ok``."""
    passed: bool | None = None
    """Whether ``value`` reached the evaluator's threshold, when ``ok``."""
    reason: str = ""
    """The judge's reason, or why the score was skipped."""
    error_kind: str | None = None
    """For errors: timeout, rate_limited, unavailable, refused, parse_error, ..."""
    error: str | None = None
    """For errors: the message."""
    judge: str = ""
    """The spec of the judge that scored it."""
    template_version: str = ""
    """The version of the prompt template used."""
    calls: int = 0
    """Judge calls made for this score (cache hits excluded)."""
    cached_calls: int = 0
    """Judge calls served from the response cache."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Evaluator-specific details: per-claim verdicts, probabilities, raw reply."""

    @property
    def score(self) -> float | None:
        """The score in [0, 1] (``value``), None unless ``ok``."""
        return self.value
