"""The constitutional labeler: which of two responses better follows a principle?

As in Constitutional AI (Bai et al., 2022), each comparison is judged against one
principle of the constitution, drawn at random (seeded by the pair's id, so a rerun
draws the same one); ``principle="all"`` instead asks every principle and averages,
at one pair of calls per principle. Each comparison is asked in both orders and the
two probabilities averaged (:class:`~heldout.evaluators.PairwiseJudge`): the soft
label is P(A is better). Few-shot examples are the principle's own rubric examples,
when it has them. Chain-of-thought is not offered: it helps judges of tens of billions
of parameters, and a 1.5B judge's reasoning text is less reliable than its
first-token probabilities.

The labeler is an :class:`~heldout.evaluators.Evaluator`, so labeling runs on the same
runner, store, cache and resume as evaluation: its score's ``value`` is P(A is better),
``passed`` says A was preferred, and ``metadata`` keeps both orders, the principle and
the provenance (labeler, template version, constitution hash).
"""

from __future__ import annotations

import random
from collections.abc import Collection
from pathlib import Path
from typing import Any, ClassVar, Literal

from heldout._errors import (
    ConfigError,
    JudgeError,
    JudgeParseError,
    JudgeRateLimited,
    JudgeRefused,
    JudgeTimeout,
    JudgeUnavailable,
)
from heldout.data._sample import Sample
from heldout.evaluators._base import Evaluator, Verdict
from heldout.evaluators._constitution import Constitution, Principle
from heldout.evaluators._pairwise import Pair, PairwiseJudge, Preference
from heldout.judges._client import JudgeClient

PrincipleChoice = Literal["random", "all"]

_ERRORS: dict[str, type[JudgeError]] = {
    "timeout": JudgeTimeout,
    "rate_limited": JudgeRateLimited,
    "unavailable": JudgeUnavailable,
    "refused": JudgeRefused,
    "parse_error": JudgeParseError,
}


class ConstitutionalPreference(Evaluator):
    """Labels a pair of responses (``output`` is A, ``metadata["output_b"]`` is B).

    Args:
        constitution: A Constitution, a YAML path, or None for the shipped default.
        axes: Draw principles from these axes only (default: every axis).
        principle: ``random`` (one principle per comparison) or ``all``.
        seed: Seeds the principle drawn and the order asked first, per pair.
        tie_margin: Passed to the pairwise judge: a tie within this of 0.5.
        judge: The labeler's judge spec or client (default: the configured eval judge).
        cohorts: Only pairs of these cohorts are labeled.
    """

    name = "preference"
    template_version: ClassVar[str] = f"label-v1+{PairwiseJudge.template_version}"
    requires = ("output",)

    def __init__(
        self,
        constitution: Constitution | str | Path | None = None,
        *,
        axes: Collection[str] | None = None,
        principle: PrincipleChoice = "random",
        seed: int = 0,
        tie_margin: float = 0.0,
        judge: str | JudgeClient | None = None,
        cohorts: Collection[str] | None = None,
    ) -> None:
        super().__init__(judge=judge, threshold=0.5, cohorts=cohorts)
        if principle not in ("random", "all"):
            raise ConfigError(f"principle must be 'random' or 'all'; got {principle!r}")
        full = _load(constitution)
        self.constitution = full if axes is None else full.select(axes)
        self.constitution_hash = full.hash()
        self.principle = principle
        self.seed = seed
        self.tie_margin = tie_margin
        self._axis_of = {
            p.id: axis.name for axis in self.constitution.axes for p in axis.principles
        }
        self._principles = list(self.constitution.principles())

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "constitution": self.constitution.name,
            "constitution_hash": self.constitution_hash,
            "axes": self.constitution.axis_names(),
            "principle": self.principle,
            "seed": self.seed,
            "tie_margin": self.tie_margin,
        }

    def principles_for(self, pair_id: str) -> list[Principle]:
        """The principles this pair is judged on: one seeded draw, or all."""
        if self.principle == "all":
            return list(self._principles)
        return [random.Random(f"{self.seed}:{pair_id}").choice(self._principles)]

    async def judge(self, sample: Sample, client: JudgeClient) -> Verdict:
        output_b = sample.metadata.get("output_b")
        if not isinstance(output_b, str):
            raise ConfigError(
                f"sample {sample.id!r}: a pair needs response B in metadata['output_b']"
            )
        pair = Pair(
            id=sample.id, input=sample.input, output_a=sample.output or "", output_b=output_b
        )
        outcomes: list[tuple[Principle, Preference]] = []
        for principle in self.principles_for(sample.id):
            pairwise = PairwiseJudge.from_principle(
                principle, tie_margin=self.tie_margin, seed=self.seed
            )
            preference = await pairwise.preference(pair, client)
            if preference.status == "error":
                kind = preference.error_kind or ""
                # The message already names the endpoint, order by order.
                raise _ERRORS.get(kind, JudgeError)(f"principle {principle.id}: {preference.error}")
            outcomes.append((principle, preference))
        p_a = sum(p.p_a or 0.0 for _, p in outcomes) / len(outcomes)
        ids = ", ".join(principle.id for principle, _ in outcomes)
        side = "A" if p_a > 0.5 else "B" if p_a < 0.5 else "neither"
        return Verdict(
            value=p_a,
            reason=f"prefers {side} (P(A better) = {p_a:.2f}) on {ids}",
            metadata={
                "principles": [principle.id for principle, _ in outcomes],
                "axes": sorted({self._axis_of[principle.id] for principle, _ in outcomes}),
                "preferences": [p.model_dump(mode="json") for _, p in outcomes],
                "labeler": client.spec,
                "template_version": self.template_version,
                "constitution": self.constitution.name,
                "constitution_hash": self.constitution_hash,
            },
            calls=sum(p.calls for _, p in outcomes),
            cached_calls=sum(p.cached_calls for _, p in outcomes),
        )


def _load(value: Constitution | str | Path | None) -> Constitution:
    if value is None:
        return Constitution.default()
    if isinstance(value, Constitution):
        return value
    return Constitution.load(value)
