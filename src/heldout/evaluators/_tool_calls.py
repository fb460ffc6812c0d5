"""ToolCallCorrectness: tool calls checked against their schemas, then for fit.

Two parts, each reported on its own in the score's metadata:

1. **Rules, no judge.** Every call must name a tool the agent was given, carry
   arguments that are a JSON object, and meet the tool's ``parameters`` JSON Schema
   (see :mod:`._json_schema`). When the trajectory does not list its tools, only the
   JSON-object check is possible, and ``metadata["schemas_known"]`` says so.
2. **A judge, for meaning.** Does each call fit the task: the right tool at that
   point, with the task's actual values rather than invented or swapped ones? Asked
   over windows that show every call in full (see
   :func:`~heldout.evaluators._transcript.windows`); the lowest P(Yes) counts.

The score is the share of calls that pass the rules times the judge's P(Yes). When no
call passes the rules the judge is not asked (the score is 0 either way).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from heldout._errors import DataError
from heldout.data._trajectory import TRAJECTORY_KEY, ToolCall, Trajectory
from heldout.evaluators._base import Verdict
from heldout.evaluators._criteria import YES_NO
from heldout.evaluators._json_schema import SchemaError, check_arguments
from heldout.evaluators._safety import choice_probs, choice_request, tally
from heldout.evaluators._trajectory import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_STEP_CHARS,
    NothingToJudge,
    TrajectoryEvaluator,
    trajectory_blocks,
    yes_no_system,
)
from heldout.evaluators._transcript import windows, windows_record
from heldout.judges._client import JudgeClient
from heldout.judges._types import JudgeReply

FIT_RUBRIC = """Answer Yes if every tool call fits the task: it is a sensible tool for \
what the agent needed at that point, and its argument values are the right ones, taken \
from the task or from earlier tool results, not invented, not swapped, and not about \
another object than the one the task names. Answer No if any call uses an unfitting \
tool or passes a wrong, invented or mismatched value. Argument types and formats are \
checked separately: judge what the values mean, not their syntax."""


@dataclass(frozen=True)
class CallCheck:
    """What the rules found about one tool call.

    Attributes:
        step: The 1-based step that made the call.
        call_id: The call's id.
        tool: The tool called.
        problems: Each rule the call breaks; empty when it passes.
        unchecked: Schema keywords of the tool that the checker could not check.
    """

    step: int
    call_id: str
    tool: str
    problems: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """The check as JSON-ready data."""
        return {
            "step": self.step,
            "call_id": self.call_id,
            "tool": self.tool,
            "problems": list(self.problems),
        }


def parse_arguments(text: str) -> tuple[Any, str | None]:
    """``(value, problem)``: the arguments as JSON, or why they cannot be read.

    Empty text is read as ``{}``: some agent frameworks send it for a call without
    arguments.
    """
    if not text.strip():
        return {}, None
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON: {exc.msg} at character {exc.pos}"


def check_call(trajectory: Trajectory, step: int, call: ToolCall) -> CallCheck:
    """Check one call by the rules: a known tool, a JSON object, the tool's schema.

    Raises:
        DataError: The tool's ``parameters`` are not a valid JSON Schema: the data is
            wrong, not the agent.
    """
    value, problem = parse_arguments(call.arguments)
    problems = [problem] if problem else []
    if problem is None and not isinstance(value, dict):
        problems.append(f"arguments must be a JSON object, got {type(value).__name__}")
    unchecked: tuple[str, ...] = ()
    if trajectory.tools is not None:
        tool = trajectory.tool(call.name)
        if tool is None:
            known = ", ".join(t.name for t in trajectory.tools) or "none"
            problems.append(f"unknown tool {call.name!r}; the agent was given: {known}")
        elif tool.parameters is not None and isinstance(value, dict):
            try:
                found = check_arguments(value, tool.parameters)
            except SchemaError as exc:
                raise DataError(
                    f"sample {trajectory.id!r}: the parameters of tool {call.name!r} are not "
                    f"a valid JSON Schema: {exc}",
                    field=f"metadata.{TRAJECTORY_KEY}.tools",
                ) from exc
            problems += found.violations
            unchecked = found.unchecked
    return CallCheck(step, call.id, call.name, tuple(problems), unchecked)


class ToolCallCorrectness(TrajectoryEvaluator):
    """Are the tool calls well formed by their schemas, and do they fit the task?

    The score is the share of calls that pass the schema rules times the judge's
    P(Yes) that every call fits the task (see the module docstring). A trajectory
    without tool calls is ``skipped``. ``metadata["violations"]`` lists every broken
    rule by step and call; ``metadata["unchecked_keywords"]`` names schema keywords the
    rules could not check.

    Args:
        semantic: Also ask the judge whether the calls fit the task; False scores by
            the rules alone (no judge call).
        max_chars: Characters of trajectory text per judge call.
        max_step_chars: Characters of one text before it is clipped.
        judge: A judge spec or client; None uses the configured eval judge.
        threshold: The score at or above which a trajectory passes (default 0.75: a
            trajectory fails when one call in four breaks the rules).
        cohorts: Only rows of these cohorts are judged; None judges every row.
    """

    name = "tool_call_correctness"
    template_version = "tool-calls-v1"
    default_threshold = 0.75
    intro = "You check whether the tool calls an AI agent made fit the user's task."
    question = "Does every tool call shown fit the task? Answer Yes or No."

    def __init__(
        self,
        *,
        semantic: bool = True,
        max_chars: int = DEFAULT_MAX_CHARS,
        max_step_chars: int = DEFAULT_MAX_STEP_CHARS,
        judge: str | JudgeClient | None = None,
        threshold: float | None = None,
        cohorts: Collection[str] | None = None,
    ) -> None:
        super().__init__(
            max_chars=max_chars,
            max_step_chars=max_step_chars,
            judge=judge,
            threshold=threshold,
            cohorts=cohorts,
        )
        self.semantic = semantic

    def config(self) -> dict[str, Any]:
        return {**super().config(), "semantic": self.semantic}

    async def judge_trajectory(self, trajectory: Trajectory, client: JudgeClient) -> Verdict:
        calls = trajectory.tool_calls()
        if not calls:
            raise NothingToJudge("the trajectory makes no tool calls")
        checks = [check_call(trajectory, step, call) for step, call in calls]
        valid = sum(not c.problems for c in checks)
        share = valid / len(checks)
        metadata: dict[str, Any] = {
            "calls": len(checks),
            "valid_calls": valid,
            "schema_valid_share": share,
            "schemas_known": trajectory.tools is not None,
            "violations": [c.record() for c in checks if c.problems],
            "unchecked_keywords": sorted({k for c in checks for k in c.unchecked}),
        }
        reason = f"{valid} of {len(checks)} tool call(s) pass the schema rules"
        if not self.semantic or valid == 0:
            return Verdict(value=share, reason=reason + ".", metadata=metadata)
        replies, by_window, record = await self._fit(trajectory, client)
        p_fit = min(by_window.values())
        calls_made, cached = tally(replies)
        fits = "fit" if p_fit >= self.threshold else "do not all fit"
        return Verdict(
            value=share * p_fit,
            reason=f"{reason}; the judge finds the calls {fits} the task (P(Yes) = {p_fit:.2f}).",
            metadata={**metadata, "p_fit": p_fit, "p_fit_by_window": by_window, "window": record},
            calls=calls_made,
            cached_calls=cached,
        )

    async def _fit(
        self, trajectory: Trajectory, client: JudgeClient
    ) -> tuple[list[JudgeReply], dict[str, float], dict[str, Any]]:
        system = yes_no_system(self.intro, FIT_RUBRIC)
        parts = windows(trajectory, max_chars=self.max_chars, max_step_chars=self.max_step_chars)
        replies: list[JudgeReply] = []
        by_window: dict[str, float] = {}
        for part in parts:
            if not any(s.tool_calls for s in trajectory.steps[part.first - 1 : part.last]):
                continue  # a window of results and messages only has no call to judge
            user = trajectory_blocks(trajectory, part.text) + "\n\n" + self.question
            reply = await client.call(choice_request(system, user, YES_NO, self.template_version))
            replies.append(reply)
            by_window[f"{part.first}-{part.last}"] = choice_probs(reply, YES_NO, client.spec)["Yes"]
        return replies, by_window, windows_record(parts)
