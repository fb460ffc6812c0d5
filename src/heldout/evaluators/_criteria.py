"""Criteria: one yes/no question about an output, scored by the judge's P(Yes)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from heldout._errors import JudgeParseError
from heldout.data._sample import Sample
from heldout.evaluators._base import Evaluator, Verdict
from heldout.evaluators._prompt import DATA_RULES, block
from heldout.judges._client import JudgeClient
from heldout.judges._types import JudgeReply, JudgeRequest, Message

YES_NO = ("Yes", "No")
Method = Literal["probability", "structured"]

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "reason": {"type": "string", "description": "One or two sentences: why."},
        "verdict": {"type": "string", "enum": ["yes", "no"]},
    },
    "required": ["reason", "verdict"],
    "additionalProperties": False,
}


def yes_probability(reply: JudgeReply, endpoint: str = "") -> float:
    """P(Yes) from a choice-mode reply to a Yes/No question.

    Raises:
        JudgeParseError: The reply carries no probability for "Yes".
    """
    if reply.choice_probs is None or "Yes" not in reply.choice_probs:
        raise JudgeParseError(
            "the judge gave no Yes/No probabilities", endpoint=endpoint, raw=reply.text
        )
    return reply.choice_probs["Yes"]


def sample_blocks(sample: Sample, fields: tuple[str, ...]) -> str:
    """The sample's fields as delimited data blocks, in a fixed order."""
    parts = []
    for name in ("context", "input", "reference", "output"):
        value = getattr(sample, name)
        if name in fields and value:
            parts.append(block(name, value))
    return "\n\n".join(parts)


class Criteria(Evaluator):
    """Does the output meet a criterion written in plain words?

    The criterion goes in the system prompt, first, so every row shares that prefix
    (llama.cpp reuses it). With ``method="probability"`` the score is the judge's
    probability of "Yes" from one token; with ``method="structured"`` the judge writes
    a JSON verdict with a reason, and the score is 1 for yes and 0 for no.

    Args:
        criteria: The criterion, e.g. "The answer states the correct dose".
        name: The evaluator's name in results (default ``criteria``).
        method: ``probability`` (one token, calibrated) or ``structured`` (JSON with reason).
        judge: A judge spec or client; None uses the configured eval judge.
        threshold: The pass mark.
        cohorts: Only rows of these cohorts are judged; None judges every row.
    """

    name = "criteria"
    template_version = "criteria-v1"
    requires = ("output",)

    def __init__(
        self,
        criteria: str,
        *,
        name: str | None = None,
        method: Method = "probability",
        judge: str | JudgeClient | None = None,
        threshold: float | None = None,
        cohorts: Collection[str] | None = None,
    ) -> None:
        super().__init__(judge=judge, threshold=threshold, cohorts=cohorts)
        self.criteria = criteria
        self.method = method
        if name is not None:
            self.name = name

    def config(self) -> dict[str, object]:
        return {**super().config(), "criteria": self.criteria, "method": self.method}

    def request(self, sample: Sample) -> JudgeRequest:
        """The judge request for ``sample``."""
        system = (
            "You are a strict, fair evaluator of AI assistant responses.\n"
            f"{DATA_RULES}\n\n"
            f"Criterion: {self.criteria}\n\n"
            + (
                "Answer Yes if the output meets the criterion and No if it does not. "
                "Answer with a single word: Yes or No."
                if self.method == "probability"
                else 'Reply with JSON: {"reason": "<why, briefly>", "verdict": "yes" or "no"}.'
            )
        )
        question = (
            "Does the output meet the criterion? Answer Yes or No."
            if self.method == "probability"
            else "Does the output meet the criterion? Give your JSON verdict."
        )
        user = (
            sample_blocks(sample, ("context", "input", "reference", "output")) + "\n\n" + question
        )
        messages = (Message(role="system", content=system), Message(role="user", content=user))
        if self.method == "structured":
            return JudgeRequest(
                messages=messages,
                mode="json",
                json_schema=VERDICT_SCHEMA,
                max_tokens=200,
                template_version=self.template_version,
            )
        return JudgeRequest(
            messages=messages,
            mode="choice",
            choices=YES_NO,
            max_tokens=1,
            template_version=self.template_version,
        )

    async def judge(self, sample: Sample, client: JudgeClient) -> Verdict:
        reply = await client.call(self.request(sample))
        calls, cached_calls = (0, 1) if reply.cached else (1, 0)
        if self.method == "structured":
            data = reply.data or {}
            verdict = str(data.get("verdict", "")).strip().lower()
            if verdict not in ("yes", "no"):
                raise JudgeParseError(
                    f"verdict {verdict!r} is neither yes nor no",
                    endpoint=client.spec,
                    raw=reply.text,
                )
            return Verdict(
                value=1.0 if verdict == "yes" else 0.0,
                reason=str(data.get("reason", "")),
                metadata={"verdict": verdict},
                calls=calls,
                cached_calls=cached_calls,
            )
        p_yes = yes_probability(reply, client.spec)
        verdict = "meets" if p_yes >= self.threshold else "does not meet"
        return Verdict(
            value=p_yes,
            reason=f"The judge says the output {verdict} the criterion (P(Yes) = {p_yes:.2f}).",
            metadata={"p_yes": p_yes},
            calls=calls,
            cached_calls=cached_calls,
        )
