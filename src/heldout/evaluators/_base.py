"""The evaluator protocol: one sample in, one :class:`Score` out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, ClassVar

from heldout._errors import JudgeError
from heldout._sync import run_sync
from heldout.config import Settings, load_settings
from heldout.data._sample import Sample
from heldout.evaluators._score import Score, ScoreStatus
from heldout.judges._cache import MemoryCache, ResponseCache
from heldout.judges._client import JudgeClient
from heldout.judges._factory import make_judge

Field = str  # a Sample field name: "input", "output", "context", "reference"


@dataclass(frozen=True)
class Verdict:
    """What an evaluator concluded about one sample.

    Attributes:
        value: The score in [0, 1].
        reason: Why, in words a person can check.
        metadata: Details (per-claim verdicts, probabilities, raw replies).
        calls: Judge calls that went to the judge.
        cached_calls: Judge calls served from the cache.
    """

    value: float
    reason: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    calls: int = 0
    cached_calls: int = 0


class Evaluator(ABC):
    """Grades one sample at a time with a judge.

    Subclasses set ``name``, ``template_version`` and ``requires`` and implement
    :meth:`judge`. Errors from the judge become ``error`` scores; a sample missing a
    required field becomes a ``skipped`` score. Neither is ever a 0 or a FAIL.

    Args:
        judge: A judge spec (``"openai:gpt-4o-mini"``) or a ready :class:`JudgeClient`;
            None uses the configured eval judge.
        threshold: The score at or above which a sample passes.
        cohorts: Only rows of these cohorts are judged; None judges every row. Rows
            outside them get no score at all (the evaluator does not apply to them).
    """

    name: str
    template_version: ClassVar[str]
    requires: ClassVar[tuple[Field, ...]] = ("output",)
    default_threshold: ClassVar[float] = 0.5

    def __init__(
        self,
        *,
        judge: str | JudgeClient | None = None,
        threshold: float | None = None,
        cohorts: Collection[str] | None = None,
    ):
        self.judge_spec: str | None = judge if isinstance(judge, str) else None
        self._client: JudgeClient | None = judge if isinstance(judge, JudgeClient) else None
        self.threshold = self.default_threshold if threshold is None else threshold
        self.cohorts: frozenset[str] | None = None if cohorts is None else frozenset(cohorts)

    def applies_to(self, sample: Sample) -> bool:
        """Whether this evaluator judges ``sample`` at all (by its cohort)."""
        return self.cohorts is None or sample.cohort in self.cohorts

    @abstractmethod
    async def judge(self, sample: Sample, client: JudgeClient) -> Verdict:
        """Ask the judge about ``sample``.

        Raises:
            JudgeError: The judge failed or its reply cannot be read.
        """

    def config(self) -> dict[str, Any]:
        """What identifies this evaluator's scores: part of a run's identity."""
        return {
            "name": self.name,
            "template_version": self.template_version,
            "threshold": self.threshold,
            "judge": self.judge_spec,
            "cohorts": None if self.cohorts is None else sorted(self.cohorts),
        }

    def make_score(
        self, sample: Sample, client: JudgeClient, status: ScoreStatus, **fields: Any
    ) -> Score:
        """A score of ``sample`` by this evaluator and ``client``'s judge, with ``fields``."""
        return Score(
            sample_id=sample.id,
            cohort=sample.cohort,
            evaluator=self.name,
            judge=client.spec,
            template_version=self.template_version,
            status=status,
            **fields,
        )

    async def score(self, sample: Sample, client: JudgeClient) -> Score:
        """Grade ``sample``; never raises for judge failures."""

        def make(status: ScoreStatus, **fields: Any) -> Score:
            return self.make_score(sample, client, status, **fields)

        missing = [f for f in self.requires if not getattr(sample, f)]
        if missing:
            return make("skipped", reason=f"sample has no {', '.join(missing)}")
        try:
            verdict = await self.judge(sample, client)
        except JudgeError as exc:
            raw = getattr(exc, "raw", "")
            return make(
                "error",
                error_kind=exc.kind,
                error=str(exc),
                metadata={"raw": raw} if raw else {},
            )
        return make(
            "ok",
            value=verdict.value,
            passed=verdict.value >= self.threshold,
            reason=verdict.reason,
            calls=verdict.calls,
            cached_calls=verdict.cached_calls,
            metadata=verdict.metadata,
        )

    def client(
        self, settings: Settings | None = None, cache: ResponseCache | None = None
    ) -> JudgeClient:
        """The judge client this evaluator uses on its own (outside a runner)."""
        if self._client is None:
            settings = settings or load_settings()
            spec = self.judge_spec or settings.eval_judge
            self._client = JudgeClient(
                make_judge(spec, settings), settings=settings, cache=cache or MemoryCache()
            )
        return self._client

    async def aevaluate(
        self,
        *,
        input: str,
        output: str | None = None,
        context: str | None = None,
        reference: str | None = None,
    ) -> Score:
        """Grade one input/output pair (async)."""
        sample = Sample(
            id="adhoc", input=input, output=output, context=context, reference=reference
        )
        return await self.score(sample, self.client())

    def evaluate(
        self,
        *,
        input: str,
        output: str | None = None,
        context: str | None = None,
        reference: str | None = None,
    ) -> Score:
        """Grade one input/output pair, blocking until the verdict is in."""
        return run_sync(
            self.aevaluate(input=input, output=output, context=context, reference=reference)
        )
