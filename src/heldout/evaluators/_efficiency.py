"""Efficiency: redundant tool calls and loops, found by rules (no judge call).

A call is **redundant** when an earlier call had the same tool, the same arguments (as
JSON, whatever the key order) and got the same result back: it learned nothing new.
Calling again after the result changed (polling a job until it is done) is not
redundant. A **loop** is a run of calls in which the same block of one or more calls
repeats back to back with the same results (``search, search, search`` or
``open, read, open, read``).

The score is the share of calls that are not redundant. Redundancy a rule cannot see
(two searches worded differently for the same thing) is left to
:class:`~heldout.evaluators.PlanCoherence`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from heldout.data._trajectory import Trajectory
from heldout.evaluators._base import Verdict
from heldout.evaluators._trajectory import NothingToJudge, TrajectoryEvaluator
from heldout.judges._client import JudgeClient

Signature = tuple[str, str, str | None]
"""A call's tool, its canonical arguments, and the result it got (None: no result)."""

_MAX_LOOP_BLOCK = 8  # the longest block of calls looked for as a repeating unit


def canonical_arguments(text: str) -> str:
    """The arguments as canonical JSON (sorted keys), or as written if not JSON."""
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except json.JSONDecodeError:
        return text


def signatures(trajectory: Trajectory) -> list[tuple[int, str, Signature]]:
    """``(step, call id, signature)`` of every tool call, in order."""
    out = []
    for step, call in trajectory.tool_calls():
        result = trajectory.result_of(call.id)
        content = None if result is None else (result.content or "")
        out.append((step, call.id, (call.name, canonical_arguments(call.arguments), content)))
    return out


def find_loops(sigs: Sequence[Signature]) -> list[tuple[int, int, int]]:
    """``(start, block, repeats)`` of each loop: ``sigs[start:start + block]`` repeated
    ``repeats`` times back to back (at least twice), leftmost and shortest block first."""
    loops = []
    start = 0
    while start < len(sigs):
        found = None
        for block in range(1, min(_MAX_LOOP_BLOCK, (len(sigs) - start) // 2) + 1):
            unit = list(sigs[start : start + block])
            repeats = 1
            while list(sigs[start + repeats * block : start + (repeats + 1) * block]) == unit:
                repeats += 1
            if repeats >= 2:
                found = (start, block, repeats)
                break
        if found is None:
            start += 1
            continue
        loops.append(found)
        start += found[1] * found[2]
    return loops


class Efficiency(TrajectoryEvaluator):
    """Does the agent reach its end without redundant calls and loops?

    Decided by rules (see the module docstring); no judge is called and the score's
    ``judge`` is empty. The score is the share of tool calls that are not redundant;
    ``metadata["redundant_calls"]`` names each redundant call and the step it repeats,
    ``metadata["loops"]`` each loop. A trajectory without tool calls is ``skipped``.

    Args:
        threshold: The share of non-redundant calls at or above which a trajectory
            passes (default 0.75: at most one call in four wasted).
        cohorts: Only rows of these cohorts are judged; None judges every row.
        judge: Accepted for a uniform interface; never called.
    """

    name = "efficiency"
    template_version = "efficiency-v1"
    default_threshold = 0.75

    def __init__(
        self,
        *,
        threshold: float | None = None,
        cohorts: Collection[str] | None = None,
        judge: str | JudgeClient | None = None,
    ) -> None:
        super().__init__(judge=judge, threshold=threshold, cohorts=cohorts)

    def config(self) -> dict[str, Any]:
        config = super().config()
        for unused in ("max_chars", "max_step_chars"):  # nothing is sent to a judge
            config.pop(unused)
        return config

    async def judge_trajectory(self, trajectory: Trajectory, client: JudgeClient) -> Verdict:
        calls = signatures(trajectory)
        if not calls:
            raise NothingToJudge("the trajectory makes no tool calls")
        first: dict[Signature, int] = {}
        redundant: list[dict[str, Any]] = []
        for step, call_id, sig in calls:
            if sig in first:
                redundant.append(
                    {"step": step, "call_id": call_id, "tool": sig[0], "repeats_step": first[sig]}
                )
            else:
                first[sig] = step
        loops: list[dict[str, Any]] = [
            {
                "steps": f"{calls[start][0]}-{calls[start + block * repeats - 1][0]}",
                "tools": [sig[0] for sig in (c[2] for c in calls[start : start + block])],
                "repeats": repeats,
            }
            for start, block, repeats in find_loops([c[2] for c in calls])
        ]
        share = 1 - len(redundant) / len(calls)
        reason = f"{len(redundant)} of {len(calls)} tool call(s) repeat an earlier call and result"
        if loops:
            reason += f"; {len(loops)} loop(s), at steps " + ", ".join(x["steps"] for x in loops)
        return Verdict(
            value=share,
            reason=reason + ".",
            metadata={
                "calls": len(calls),
                "redundant_calls": redundant,
                "loops": loops,
                "steps": len(trajectory.steps),
            },
        )
