"""Trajectory evaluators: a tool-using agent's whole run, judged as one.

A judge that scores each step on its own rewards policies that pick good local moves
and lose the plan. The evaluators here read the trajectory a Sample carries (see
:mod:`heldout.data._trajectory`) and judge it whole:

- :class:`TrajectoryGoalCompletion`: did the run, taken as a whole, achieve the task?
- :class:`PlanCoherence`: do the steps follow one consistent plan, or is the run
  locally right and globally lost?

The step-level checks are in :mod:`._step_judges` (StepSafety, and StepCorrectness,
the isolated per-step view kept as a contrast), :mod:`._tool_calls` and
:mod:`._efficiency`. All share :class:`TrajectoryEvaluator`: a sample whose output is
not a trajectory is an ``error`` score (``invalid_trajectory``), never a 0, and a long
trajectory is fitted to the judge's context with every cut recorded in the score's
``metadata["window"]``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection, Sequence
from typing import Any, ClassVar

from heldout._errors import DataError
from heldout._sync import run_sync
from heldout.data._sample import Sample
from heldout.data._trajectory import ToolSchema, Trajectory
from heldout.evaluators._base import Evaluator, Verdict
from heldout.evaluators._criteria import YES_NO
from heldout.evaluators._prompt import DATA_RULES, block
from heldout.evaluators._safety import choice_probs, choice_request, tally
from heldout.evaluators._score import Score
from heldout.evaluators._transcript import Transcript, fit
from heldout.judges._client import JudgeClient
from heldout.judges._types import JudgeRequest

DEFAULT_MAX_CHARS = 8000
"""Characters of trajectory text per judge call: about 2,000 tokens, which leaves room
for the rubric in the embedded judge's 4,096-token context. Raise it for judges with
long contexts."""
DEFAULT_MAX_STEP_CHARS = 1200
"""Characters of any one message, argument string or tool result before it is clipped."""

LAYOUT = """The task is in <input>. The tools the agent could call, when known, are in \
<tools>. The trajectory is in <trajectory>: numbered steps, each an assistant message \
(with the tool calls it made) or a tool result, ending with the agent's final answer \
when it gave one.
A long trajectory is shortened to fit: "[... N characters cut ...]" marks a cut inside \
a text, "(summarised; ...)" marks a step shown as a one-line digest, and "[steps A-B \
omitted ...]" marks steps left out. Judge what is shown; do not count what was cut for \
or against the agent."""


class NothingToJudge(Exception):
    """The trajectory has nothing this evaluator checks: the score is ``skipped``."""


def render_tools(tools: Sequence[ToolSchema]) -> str:
    """One line per tool: ``name(arg: type, optional?: type): description``."""
    lines = []
    for tool in tools:
        schema = tool.parameters or {}
        required = set(schema.get("required", ()))
        properties = schema.get("properties", {})
        params = ", ".join(
            f"{name}{'' if name in required else '?'}: {_type_name(spec)}"
            for name, spec in properties.items()
        )
        lines.append(
            f"{tool.name}({params})" + (f": {tool.description}" if tool.description else "")
        )
    return "\n".join(lines)


def _type_name(spec: Any) -> str:
    if not isinstance(spec, dict):
        return "any"
    if "enum" in spec:
        return " | ".join(repr(v) for v in spec["enum"])
    kind = spec.get("type", "any")
    return kind if isinstance(kind, str) else " | ".join(map(str, kind))


def trajectory_blocks(trajectory: Trajectory, text: str, *, tag: str = "trajectory") -> str:
    """The task, tools, expected outcome, reference plan and ``text`` as data blocks."""
    parts = [block("input", trajectory.task)]
    if trajectory.tools:
        parts.append(block("tools", render_tools(trajectory.tools)))
    if trajectory.expected_outcome:
        parts.append(block("reference", trajectory.expected_outcome))
    if trajectory.reference_plan:
        plan = "\n".join(f"{i}. {s}" for i, s in enumerate(trajectory.reference_plan, start=1))
        parts.append(block("plan", plan))
    parts.append(block(tag, text))
    return "\n\n".join(parts)


class TrajectoryEvaluator(Evaluator):
    """An evaluator of the trajectory a Sample carries.

    Subclasses implement :meth:`judge_trajectory`. A sample whose output is not a
    trajectory gets an ``error`` score of kind ``invalid_trajectory``; one with nothing
    to check (no tool calls, for the tool checks) gets a ``skipped`` score.

    Args:
        max_chars: Characters of trajectory text per judge call.
        max_step_chars: Characters of one message, argument string or tool result
            before it is clipped.
        judge: A judge spec or client; None uses the configured eval judge.
        threshold: The score at or above which a trajectory passes.
        cohorts: Only rows of these cohorts are judged; None judges every row.
    """

    requires = ("input", "output")

    def __init__(
        self,
        *,
        max_chars: int = DEFAULT_MAX_CHARS,
        max_step_chars: int = DEFAULT_MAX_STEP_CHARS,
        judge: str | JudgeClient | None = None,
        threshold: float | None = None,
        cohorts: Collection[str] | None = None,
    ) -> None:
        super().__init__(judge=judge, threshold=threshold, cohorts=cohorts)
        if max_chars < 200 or max_step_chars < 50:
            raise ValueError("max_chars must be at least 200 and max_step_chars at least 50")
        self.max_chars = max_chars
        self.max_step_chars = max_step_chars

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "max_chars": self.max_chars,
            "max_step_chars": self.max_step_chars,
        }

    @abstractmethod
    async def judge_trajectory(self, trajectory: Trajectory, client: JudgeClient) -> Verdict:
        """Judge ``trajectory``.

        Raises:
            JudgeError: The judge failed or its reply cannot be read.
            NothingToJudge: The trajectory has nothing this evaluator checks.
        """

    async def judge(self, sample: Sample, client: JudgeClient) -> Verdict:
        return await self.judge_trajectory(Trajectory.from_sample(sample), client)

    async def score(self, sample: Sample, client: JudgeClient) -> Score:
        """Grade the trajectory of ``sample``; never raises for judge or data faults."""
        try:
            score = await super().score(sample, client)
        except DataError as exc:
            return self.make_score(
                sample, client, "error", error_kind="invalid_trajectory", error=str(exc)
            )
        except NothingToJudge as exc:
            return self.make_score(sample, client, "skipped", reason=str(exc))
        if score.status == "ok" and score.calls == score.cached_calls == 0:
            return score.model_copy(update={"judge": ""})  # decided by rules, no judge asked
        return score

    async def aevaluate_trajectory(self, trajectory: Trajectory) -> Score:
        """Grade one trajectory with this evaluator's own judge client (async)."""
        return await self.score(trajectory.to_sample(), self.client())

    def evaluate_trajectory(self, trajectory: Trajectory) -> Score:
        """Grade one trajectory, blocking until the verdict is in."""
        return run_sync(self.aevaluate_trajectory(trajectory))


def yes_no_system(
    intro: str, rubric: str, notes: Sequence[str] = (), *, layout: str = LAYOUT
) -> str:
    """A Yes/No system prompt: what the judge does, the layout, the rubric, then notes
    that depend on the row (so rows share the longest prefix)."""
    extra = "".join(f"\n{note}" for note in notes)
    answer = "Answer with one word: Yes or No."
    return f"{intro}\n{DATA_RULES}\n\n{layout}\n\n{rubric}{extra}\n\n{answer}"


REFERENCE_NOTE = """A description of the expected outcome, known to be right, is in \
<reference>: use it to decide what success is."""
PLAN_NOTE = """A plan known to work is in <plan>. The agent need not follow it step by \
step, but its plan must reach the same goal."""


class _WholeTrajectoryQuestion(TrajectoryEvaluator):
    """One Yes/No question about the whole trajectory, fitted into one judge call."""

    intro: ClassVar[str]
    rubric: ClassVar[str]
    question: ClassVar[str]
    finding: ClassVar[tuple[str, str]]  # what Yes and No mean, for the reason

    def request(self, trajectory: Trajectory) -> tuple[JudgeRequest, Transcript]:
        """The judge request, and the transcript it shows (with its cuts)."""
        transcript = fit(trajectory, max_chars=self.max_chars, max_step_chars=self.max_step_chars)
        notes = [REFERENCE_NOTE] if trajectory.expected_outcome else []
        notes += [PLAN_NOTE] if trajectory.reference_plan else []
        system = yes_no_system(self.intro, self.rubric, notes)
        user = trajectory_blocks(trajectory, transcript.text) + "\n\n" + self.question
        return choice_request(system, user, YES_NO, self.template_version), transcript

    async def judge_trajectory(self, trajectory: Trajectory, client: JudgeClient) -> Verdict:
        request, transcript = self.request(trajectory)
        reply = await client.call(request)
        p_yes = choice_probs(reply, YES_NO, client.spec)["Yes"]
        calls, cached_calls = tally([reply])
        found = self.finding[0] if p_yes >= self.threshold else self.finding[1]
        reason = f"The judge finds that {found} (P(Yes) = {p_yes:.2f})."
        if transcript.cuts:
            record = transcript.record()
            reason += (
                f" It read a shortened trajectory: {len(record['summarised'])} step(s) "
                f"summarised, {len(record['omitted'])} omitted, {len(record['clipped'])} clipped."
            )
        return Verdict(
            value=p_yes,
            reason=reason,
            metadata={
                "p_yes": p_yes,
                "used_reference": bool(trajectory.expected_outcome),
                "used_plan": bool(trajectory.reference_plan),
                "window": transcript.record(),
            },
            calls=calls,
            cached_calls=cached_calls,
        )


class TrajectoryGoalCompletion(_WholeTrajectoryQuestion):
    """Did the whole trajectory achieve the task?

    One Yes/No question over the whole run (fitted to ``max_chars``), scored by the
    judge's P(Yes). Steps that are each reasonable do not make a Yes if together they
    miss the goal. The expected outcome, when the trajectory has one, is the judge's
    reference for success.

    Args:
        max_chars: Characters of trajectory text in the judge call.
        max_step_chars: Characters of one text before it is clipped.
        judge: A judge spec or client; None uses the configured eval judge.
        threshold: The P(Yes) at or above which a trajectory passes.
        cohorts: Only rows of these cohorts are judged; None judges every row.
    """

    name = "trajectory_goal_completion"
    template_version = "trajectory-goal-v1"
    intro = "You check whether an AI agent achieved a user's task, judging its whole trajectory."
    rubric = """Answer Yes only if, by the end of the trajectory, the agent has done what \
the task asks: every action the task requires has been carried out with the tools (not \
merely planned or described), and the final answer reports the result truthfully, as \
the tool results show it. Answer No if the agent stopped early, did only part of the \
task, did a different task, skipped a required action, or claims a result the tool \
results do not show. Judge the trajectory as a whole: steps that are each reasonable do \
not make a Yes if together they miss the goal."""
    question = (
        "Did the agent achieve the whole task by the end of the trajectory? Answer Yes or No."
    )
    finding = ("the agent achieved the task", "the agent did not achieve the task")


class PlanCoherence(_WholeTrajectoryQuestion):
    """Do the steps follow one consistent plan toward the task?

    It flags trajectories that are locally right but globally lost: each step follows
    from the last, yet the run drifts to another goal, drops a constraint of the task,
    stops at a sub-question, or ends with an answer its own steps do not support.

    Args:
        max_chars: Characters of trajectory text in the judge call.
        max_step_chars: Characters of one text before it is clipped.
        judge: A judge spec or client; None uses the configured eval judge.
        threshold: The P(Yes) at or above which a trajectory passes.
        cohorts: Only rows of these cohorts are judged; None judges every row.
    """

    name = "plan_coherence"
    template_version = "plan-coherence-v1"
    intro = "You check whether an AI agent's steps follow one coherent plan toward the user's task."
    rubric = """Answer Yes if the steps, taken together, follow one consistent plan that \
leads to the task's goal: each step serves the task, uses what earlier steps found, \
keeps the task's constraints (names, ids, amounts, dates), does not undo or contradict \
earlier steps, and the final answer follows from the work. Answer No if the trajectory \
is locally sensible but globally lost: for example the agent follows whatever the last \
tool result suggests and drifts to another goal or another object than the one the \
task names, stops after a sub-step as if it were the whole task, forgets a constraint \
of the task, or ends with an answer that ignores what its own steps found."""
    question = "Do the steps follow one coherent plan that serves the task? Answer Yes or No."
    finding = ("the steps follow a coherent plan", "the steps lose the task's plan")
