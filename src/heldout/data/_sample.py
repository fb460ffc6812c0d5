"""A sample: one row of a held-out cohort."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Sample(BaseModel):
    """One prompt of a held-out cohort, with the policy output to judge.

    For a RegressionEval the same ``id`` appears once per checkpoint, each with that
    checkpoint's ``output``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    """Stable row id, unique within a dataset."""
    cohort: str = "default"
    """The held-out cohort: helpfulness, harmlessness, honesty, regression, ..."""
    input: str
    """The prompt the policy answered."""
    output: str | None = None
    """The policy's answer; None until generated."""
    context: str | None = None
    """Retrieved or given context the answer should be grounded in."""
    reference: str | None = None
    """A reference answer, when one exists."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Anything else carried from the source row (labels, generator, ...)."""
