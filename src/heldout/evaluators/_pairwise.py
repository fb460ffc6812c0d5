"""Pairwise judging: which of two responses to the same input is better?

Judges prefer whichever response they read first (or second): a small judge can pick
the first position nine times in ten whatever it holds. So every pair is asked in
both orders. A seeded RNG, keyed by the pair's id, picks the order asked first; the
swap follows. Each order's first-token probability of the first position,
P(first), is un-flipped into P(A is better), and the preference is the average of
the two orders (the debiasing of Lee et al., 2023, "RLAIF")::

    order AB: A shown first   P(first) = 0.9  ->  P(A) = 0.9
    order BA: B shown first   P(first) = 0.8  ->  P(A) = 0.2
    preference P(A) = (0.9 + 0.2) / 2 = 0.55, and the pair is not position-consistent

Ties: the judge answers only A or B. A tie is declared by a margin on the averaged
probability, ``|P(A) - 0.5| <= tie_margin`` (0 by default, so only a judge that
cancels itself out exactly, such as one that always picks the first position, ties).
A third "tie" answer was not offered because a small judge gives any extra option a
prior of its own, and because the margin can be re-chosen from the stored
probabilities without asking the judge again.

A judge error in either order makes the pair an ``error`` preference with the
reason: never a verdict from one order alone.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from heldout._errors import ConfigError, JudgeError
from heldout._sync import run_sync
from heldout.config import Settings, load_settings
from heldout.evaluators._constitution import Principle
from heldout.evaluators._pairwise_prompt import (
    PAIRWISE_QUESTION,
    PAIRWISE_SHOTS,
    PAIRWISE_SYSTEM,
    pairwise_user,
)
from heldout.evaluators._safety import choice_probs, choice_request
from heldout.judges._cache import MemoryCache, ResponseCache
from heldout.judges._client import JudgeClient
from heldout.judges._factory import make_judge
from heldout.judges._types import JudgeReply, JudgeRequest

Order = Literal["AB", "BA"]
"""Which response is shown first: ``AB`` shows A first, ``BA`` shows B first."""
Winner = Literal["A", "B", "tie"]
PreferenceStatus = Literal["ok", "error"]

POSITIONS = ("A", "B")
"""The letters the judge answers with: the first and the second position shown."""

_EXACT = 1e-9  # float rounding: (p + (1 - p)) / 2 may miss 0.5 by an ulp


class Pair(BaseModel):
    """Two responses to the same input, to be compared."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default="adhoc", min_length=1)
    """A stable id; it seeds the order asked first, so keep it unique."""
    input: str
    """The instruction or conversation both responses answer."""
    output_a: str
    """Response A."""
    output_b: str
    """Response B."""
    context: str | None = None
    """Material both responses should draw on, shown to the judge before the input."""
    reference: str | None = None
    """A reference answer shown to the judge, when one exists."""
    generator_a: str | None = None
    """The model that wrote A (``qwen2.5-7b-instruct``), for the self-preference probe."""
    generator_b: str | None = None
    """The model that wrote B."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Anything else carried from the source row (labels ...)."""


class OrderJudgment(BaseModel):
    """The judge's answer in one order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order: Order
    """Which response was shown first."""
    p_first: float
    """The judge's probability that the first position shown is better."""
    p_a: float
    """The same answer un-flipped: the probability that A is better."""
    cached: bool = False
    """Whether the reply came from the response cache."""

    @property
    def winner(self) -> Winner:
        """A or B by this order alone; tie only at exactly 0.5."""
        return _winner(self.p_a, 0.0)


class Preference(BaseModel):
    """The outcome of comparing one pair in both orders."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pair_id: str
    """The pair's id."""
    status: PreferenceStatus
    """``ok``, or ``error`` when the judge failed in either order (no verdict then)."""
    first_order: Order
    """The order asked first, drawn by the seeded RNG from the pair's id."""
    orders: tuple[OrderJudgment, ...] = ()
    """The judgments in the order asked: two when ``ok``, fewer on errors."""
    p_a: float | None = None
    """The debiased preference: the mean over both orders of P(A is better)."""
    verdict: Winner | None = None
    """A, B, or tie when ``p_a`` is within ``tie_margin`` of 0.5; None on errors."""
    consistent: bool | None = None
    """Whether both orders picked the same winner (position consistency)."""
    tie_margin: float = 0.0
    """The margin used for ``verdict``."""
    seed: int = 0
    """The seed of the order RNG."""
    judge: str = ""
    """The judge spec."""
    template_version: str = ""
    """The prompt template's version."""
    len_a: int = 0
    """Characters in response A (for the length-bias probe)."""
    len_b: int = 0
    """Characters in response B."""
    generator_a: str | None = None
    """The model that wrote A, copied from the pair."""
    generator_b: str | None = None
    """The model that wrote B, copied from the pair."""
    error_kind: str | None = None
    """The :attr:`JudgeError.kind` of the first failed order."""
    error: str | None = None
    """What failed, order by order."""
    calls: int = 0
    """Judge calls that went to the judge."""
    cached_calls: int = 0
    """Judge calls served from the cache."""

    @property
    def single_order_p_a(self) -> float | None:
        """P(A is better) from the order asked first alone: what one call would say."""
        return self.orders[0].p_a if self.status == "ok" else None


@dataclass(frozen=True)
class JudgedOrders:
    """Both orders of one pair as the judge answered them (in-process, before verdicts).

    Attributes:
        first_order: The order asked first.
        judgments: The orders that were answered, in the order asked.
        failures: The orders that failed, with their errors.
        replies: The judge replies of ``judgments``.
    """

    first_order: Order
    judgments: tuple[OrderJudgment, ...]
    failures: tuple[tuple[Order, JudgeError], ...]
    replies: tuple[JudgeReply, ...]


class PairwiseJudge:
    """Compares two responses in both orders and reports a debiased preference.

    Args:
        criterion: What "better" means for this comparison, in a sentence ("The
            response is more concise"); None uses the general rubric alone.
        tie_margin: A pair is a tie when its preference is within this of 0.5.
        seed: Seeds the order asked first (per pair id): same seed, same orders.
        judge: A judge spec or a ready client; None uses the configured eval judge.

    Example:
        >>> judge = PairwiseJudge(judge="local:qwen2.5-1.5b")  # doctest: +SKIP
        >>> judge.compare(input="2+2?", output_a="4", output_b="5").verdict  # doctest: +SKIP
        'A'
    """

    template_version: ClassVar[str] = "pairwise-v2"
    system_prompt: ClassVar[str] = PAIRWISE_SYSTEM
    question: ClassVar[str] = PAIRWISE_QUESTION
    shots: ClassVar[tuple[tuple[str, str], ...]] = PAIRWISE_SHOTS
    """Worked examples as answered (user, assistant) turns in the shared prefix."""

    def __init__(
        self,
        *,
        criterion: str | None = None,
        tie_margin: float = 0.0,
        seed: int = 0,
        judge: str | JudgeClient | None = None,
    ) -> None:
        if not 0.0 <= tie_margin < 0.5:
            raise ConfigError(f"tie_margin must lie in [0, 0.5); got {tie_margin}")
        self.criterion = criterion
        self.tie_margin = tie_margin
        self.seed = seed
        self.judge_spec: str | None = judge if isinstance(judge, str) else None
        self._client: JudgeClient | None = judge if isinstance(judge, JudgeClient) else None

    @classmethod
    def from_principle(cls, principle: Principle, **kwargs: Any) -> PairwiseJudge:
        """A judge that compares responses on one constitution principle and its rubric."""
        criterion = (
            f"{principle.text} A response passes when: {principle.rubric.passes} "
            f"It fails when: {principle.rubric.fails}"
        )
        return cls(criterion=criterion, **kwargs)

    def config(self) -> dict[str, Any]:
        """What identifies these preferences: the prompt, the criterion, the seed."""
        return {
            "name": "pairwise",
            "template_version": self.template_version,
            "criterion": self.criterion,
            "tie_margin": self.tie_margin,
            "seed": self.seed,
            "judge": self.judge_spec,
        }

    # -- prompts -----------------------------------------------------------------------

    def first_order(self, pair_id: str) -> Order:
        """The order asked first for ``pair_id``: a fair coin seeded by seed and id."""
        # random.Random hashes a str seed with sha512: stable across processes.
        return "AB" if random.Random(f"{self.seed}:{pair_id}").random() < 0.5 else "BA"

    def request(self, pair: Pair, order: Order) -> JudgeRequest:
        """The question about ``pair`` with the responses in ``order``.

        The rubric, then the context, input and reference come first: they are the
        same in both orders, so a local judge's prefix cache reads them once.
        """
        system = self.system_prompt
        if self.criterion:
            system += f"\nWhat matters most here: {self.criterion}\n"
        system += "\nAnswer with one letter: A or B."
        first, second = (
            (pair.output_a, pair.output_b) if order == "AB" else (pair.output_b, pair.output_a)
        )
        user = pairwise_user(
            pair.input,
            first,
            second,
            question=self.question,
            context=pair.context,
            reference=pair.reference,
        )
        return choice_request(system, user, POSITIONS, self.template_version, self.shots)

    # -- judging -----------------------------------------------------------------------

    async def preference(self, pair: Pair, client: JudgeClient) -> Preference:
        """Compare ``pair`` in both orders with ``client``; never raises for judge errors."""
        judged = await self.judge_orders(pair, client)
        cached = sum(r.cached for r in judged.replies)
        common: dict[str, Any] = {
            "pair_id": pair.id,
            "first_order": judged.first_order,
            "orders": judged.judgments,
            "tie_margin": self.tie_margin,
            "seed": self.seed,
            "judge": client.spec,
            "template_version": self.template_version,
            "len_a": len(pair.output_a),
            "len_b": len(pair.output_b),
            "generator_a": pair.generator_a,
            "generator_b": pair.generator_b,
            "calls": len(judged.replies) - cached,
            "cached_calls": cached,
        }
        if judged.failures:
            reasons = "; ".join(f"order {order}: {err}" for order, err in judged.failures)
            return Preference(
                status="error", error_kind=judged.failures[0][1].kind, error=reasons, **common
            )
        first, second = judged.judgments
        p_a = (first.p_a + second.p_a) / 2
        return Preference(
            status="ok",
            p_a=p_a,
            verdict=_winner(p_a, self.tie_margin),
            consistent=first.winner == second.winner,
            **common,
        )

    async def judge_orders(self, pair: Pair, client: JudgeClient) -> JudgedOrders:
        """Ask about ``pair`` in both orders, the seeded one first; collect what failed."""
        first = self.first_order(pair.id)
        asked: tuple[Order, Order] = (first, "BA" if first == "AB" else "AB")
        # Both orders go out together, so a local judge reads them one after the other
        # and its prefix cache keeps the shared rubric and input between them.
        outcomes = await asyncio.gather(
            *(self._ask(pair, order, client) for order in asked), return_exceptions=True
        )
        judgments: list[OrderJudgment] = []
        failures: list[tuple[Order, JudgeError]] = []
        replies: list[JudgeReply] = []
        for order, outcome in zip(asked, outcomes, strict=True):
            if isinstance(outcome, JudgeError):
                failures.append((order, outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                judgments.append(outcome[0])
                replies.append(outcome[1])
        return JudgedOrders(first, tuple(judgments), tuple(failures), tuple(replies))

    async def _ask(
        self, pair: Pair, order: Order, client: JudgeClient
    ) -> tuple[OrderJudgment, JudgeReply]:
        reply = await client.call(self.request(pair, order))
        p_first = choice_probs(reply, POSITIONS, client.spec)["A"]
        p_a = p_first if order == "AB" else 1.0 - p_first
        return OrderJudgment(order=order, p_first=p_first, p_a=p_a, cached=reply.cached), reply

    async def preferences(
        self, pairs: Iterable[Pair], client: JudgeClient, *, max_in_flight: int = 8
    ) -> list[Preference]:
        """Compare many pairs, ``max_in_flight`` at a time, in the order given.

        Pairs are streamed to a fixed set of workers, so a long iterable never becomes
        a long list of coroutines. The client's per-endpoint limit still applies.
        """
        if max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be at least 1; got {max_in_flight}")
        results: dict[int, Preference] = {}
        queue: asyncio.Queue[tuple[int, Pair] | None] = asyncio.Queue(maxsize=2 * max_in_flight)

        async def produce() -> None:
            for item in enumerate(pairs):
                await queue.put(item)
            for _ in range(max_in_flight):
                await queue.put(None)

        async def work() -> None:
            while (item := await queue.get()) is not None:
                index, pair = item
                results[index] = await self.preference(pair, client)

        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for _ in range(max_in_flight):
                group.create_task(work())
        return [results[i] for i in range(len(results))]

    # -- conveniences ------------------------------------------------------------------

    def client(
        self, settings: Settings | None = None, cache: ResponseCache | None = None
    ) -> JudgeClient:
        """The judge client used by :meth:`acompare` and :meth:`acompare_pairs`."""
        if self._client is None:
            settings = settings or load_settings()
            spec = self.judge_spec or settings.eval_judge
            self._client = JudgeClient(
                make_judge(spec, settings), settings=settings, cache=cache or MemoryCache()
            )
        return self._client

    async def acompare(
        self,
        *,
        input: str,
        output_a: str,
        output_b: str,
        context: str | None = None,
        reference: str | None = None,
        id: str = "adhoc",
    ) -> Preference:
        """Compare two responses to ``input`` in both orders (async)."""
        pair = Pair(
            id=id,
            input=input,
            output_a=output_a,
            output_b=output_b,
            context=context,
            reference=reference,
        )
        return await self.preference(pair, self.client())

    def compare(
        self,
        *,
        input: str,
        output_a: str,
        output_b: str,
        context: str | None = None,
        reference: str | None = None,
        id: str = "adhoc",
    ) -> Preference:
        """Compare two responses to ``input`` in both orders, blocking until done."""
        return run_sync(
            self.acompare(
                input=input,
                output_a=output_a,
                output_b=output_b,
                context=context,
                reference=reference,
                id=id,
            )
        )

    async def acompare_pairs(
        self, pairs: Iterable[Pair], *, max_in_flight: int = 8
    ) -> list[Preference]:
        """Compare many pairs (async); see :meth:`preferences`."""
        return await self.preferences(pairs, self.client(), max_in_flight=max_in_flight)

    def compare_pairs(self, pairs: Iterable[Pair], *, max_in_flight: int = 8) -> list[Preference]:
        """Compare many pairs, blocking until all are done."""
        return run_sync(self.acompare_pairs(pairs, max_in_flight=max_in_flight))


def _winner(p_a: float, margin: float) -> Winner:
    if abs(p_a - 0.5) <= margin + _EXACT:
        return "tie"
    return "A" if p_a > 0.5 else "B"


def ok_preferences(preferences: Sequence[Preference]) -> list[Preference]:
    """The ``ok`` preferences: the only ones any statistic may use."""
    return [p for p in preferences if p.status == "ok"]
