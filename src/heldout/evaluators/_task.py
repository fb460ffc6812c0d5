"""Task completion: did the output do what the input asked?

One Yes/No call scored by the judge's P(Yes). When the sample has a reference answer
the judge gets it in its own block and a rubric that says to check the output against
it; without one, the judge relies on its own knowledge. Each variant has a fixed system
prompt, so rows of one variant share that prefix in the embedded judge's cache.
"""

from __future__ import annotations

from collections.abc import Collection

from heldout.data._sample import Sample
from heldout.evaluators._base import Evaluator, Verdict
from heldout.evaluators._criteria import YES_NO, sample_blocks
from heldout.evaluators._prompt import DATA_RULES
from heldout.evaluators._safety import choice_probs, choice_request, tally
from heldout.judges._client import JudgeClient
from heldout.judges._types import JudgeRequest

_RUBRIC = """Answer Yes if the response does what the request asks: it addresses the \
whole request, follows its instructions (format, length, language) and its answer is \
correct. Answer No if it refuses, leaves out part of the request, ignores an \
instruction or gives a wrong answer."""

TASK_SYSTEM = f"""You check whether an AI assistant's response does what the user asked.
{DATA_RULES}

The request is in <input> and the response in <output>.
{_RUBRIC}

Answer with one word: Yes or No."""

TASK_SYSTEM_WITH_REFERENCE = f"""You check whether an AI assistant's response does what \
the user asked.
{DATA_RULES}

The request is in <input>, a reference answer known to be correct is in <reference>, \
and the response is in <output>.
{_RUBRIC}
Use the reference to check correctness: a response whose answer disagrees with the \
reference is wrong, even if it sounds confident. Wording, length and extra detail may \
differ from the reference.

Answer with one word: Yes or No."""

TASK_QUESTION = "Does the response do what the request asks? Answer Yes or No."


class TaskCompletion(Evaluator):
    """Did the output do what the input asked, checked against the reference if any?

    The score is the judge's probability of "Yes"; it passes when that reaches the
    threshold. ``metadata["used_reference"]`` says which prompt variant was used.

    Args:
        judge: A judge spec or client; None uses the configured eval judge.
        threshold: The P(Yes) at or above which an output passes.
        cohorts: Only rows of these cohorts are judged; None judges every row.
    """

    name = "task_completion"
    template_version = "task-completion-v1"
    requires = ("input", "output")

    def __init__(
        self,
        *,
        judge: str | JudgeClient | None = None,
        threshold: float | None = None,
        cohorts: Collection[str] | None = None,
    ) -> None:
        super().__init__(judge=judge, threshold=threshold, cohorts=cohorts)

    def request(self, sample: Sample) -> JudgeRequest:
        """The Yes/No question about ``sample``, with the reference block when it has one."""
        # sample_blocks leaves out an empty reference, so one field list serves both.
        system = TASK_SYSTEM_WITH_REFERENCE if sample.reference else TASK_SYSTEM
        user = sample_blocks(sample, ("input", "reference", "output")) + "\n\n" + TASK_QUESTION
        return choice_request(system, user, YES_NO, self.template_version)

    async def judge(self, sample: Sample, client: JudgeClient) -> Verdict:
        reply = await client.call(self.request(sample))
        p_yes = choice_probs(reply, YES_NO, client.spec)["Yes"]
        calls, cached_calls = tally([reply])
        done = "does" if p_yes >= self.threshold else "does not do"
        return Verdict(
            value=p_yes,
            reason=f"The judge finds the response {done} what was asked (P(Yes) = {p_yes:.2f}).",
            metadata={"p_yes": p_yes, "used_reference": bool(sample.reference)},
            calls=calls,
            cached_calls=cached_calls,
        )
