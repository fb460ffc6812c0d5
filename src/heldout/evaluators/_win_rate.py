"""WinRate: does the output beat a baseline answer, judged pairwise in both orders?

The sample's ``reference`` is the opponent (a baseline model's or the SFT
checkpoint's answer, as in AlpacaEval's win rate against a reference model). Each row
is one :class:`~heldout.evaluators.PairwiseJudge` comparison, output as A and
reference as B, so the mean score over a cohort is the output's debiased win rate.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from heldout.data._sample import Sample
from heldout.evaluators._base import Evaluator, Verdict
from heldout.evaluators._pairwise import Pair, PairwiseJudge
from heldout.judges._client import JudgeClient


class WinRate(Evaluator):
    """The probability that the output is better than the sample's reference answer.

    Both orders are asked (the first drawn by a seeded RNG from the sample id) and
    averaged; the score passes at the threshold (0.5: at least as good as the
    reference). ``metadata`` records both orders' probabilities, the order asked
    first and whether the two orders agreed. A judge error in either order is an
    ``error`` score, never a loss.

    Args:
        criterion: What "better" means here, in a sentence; None uses the rubric alone.
        seed: Seeds the order asked first.
        judge: A judge spec or client; None uses the configured eval judge.
        threshold: The P(output better) at or above which a sample passes.
        cohorts: Only rows of these cohorts are judged; None judges every row.
    """

    name = "win_rate"
    template_version = PairwiseJudge.template_version
    requires = ("input", "output", "reference")

    def __init__(
        self,
        *,
        criterion: str | None = None,
        seed: int = 0,
        judge: str | JudgeClient | None = None,
        threshold: float | None = None,
        cohorts: Collection[str] | None = None,
    ) -> None:
        super().__init__(judge=judge, threshold=threshold, cohorts=cohorts)
        self.pairwise = PairwiseJudge(criterion=criterion, seed=seed)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "criterion": self.pairwise.criterion,
            "seed": self.pairwise.seed,
        }

    async def judge(self, sample: Sample, client: JudgeClient) -> Verdict:
        pair = Pair(
            id=sample.id,
            input=sample.input,
            output_a=sample.output or "",
            output_b=sample.reference or "",
            context=sample.context,
        )
        judged = await self.pairwise.judge_orders(pair, client)
        if judged.failures:
            raise judged.failures[0][1]
        first, second = judged.judgments
        p_win = (first.p_a + second.p_a) / 2
        consistent = first.winner == second.winner
        cached = sum(r.cached for r in judged.replies)
        verdict = "better than" if p_win > 0.5 else "worse than" if p_win < 0.5 else "as good as"
        return Verdict(
            value=p_win,
            reason=(
                f"The judge finds the output {verdict} the reference (P(better) = {p_win:.2f}, "
                f"{'the same' if consistent else 'a different'} winner in both orders)."
            ),
            metadata={
                "p_win": p_win,
                "consistent": consistent,
                "first_order": judged.first_order,
                "orders": [j.model_dump(mode="json") for j in judged.judgments],
            },
            calls=len(judged.replies) - cached,
            cached_calls=cached,
        )
