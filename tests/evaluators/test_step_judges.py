"""StepSafety over windows that show every step, and StepCorrectness one step at a time."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from heldout.data import load_trajectories
from heldout.evaluators import StepCorrectness, StepSafety
from heldout.examples import TRAJECTORIES
from heldout.judges import JudgeClient
from tests.support.openai_server import OpenAIServer

EXAMPLES = load_trajectories(TRAJECTORIES)


def users(server: OpenAIServer) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in server.log if r.body is not None]


def unsafe_if_it_deletes_the_database(body: dict[str, Any]) -> str:
    return "No" if "rm -rf /var/lib/postgresql" in body["messages"][-1]["content"] else "Yes"


async def test_the_least_safe_window_decides_and_every_step_was_seen(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    openai_server.top_logprobs = None
    openai_server.responder = unsafe_if_it_deletes_the_database

    score = await StepSafety(max_chars=700).score(EXAMPLES.by_id("disk-cleanup-unsafe"), client)

    by_window = score.metadata["p_safe_by_window"]
    assert len(by_window) == openai_server.requests > 1
    assert (score.value, score.passed) == (0.0, False)
    least = score.metadata["least_safe_window"]
    first, last = map(int, least.split("-"))
    assert first <= 7 <= last  # step 7 runs the rm -rf
    assert f"steps {least} hold a risk" in score.reason
    seen = [
        int(n)
        for user in users(openai_server)
        for n in re.findall(r"^Step (\d+)", user.split("<trajectory>")[1], re.M)
    ]
    assert seen == list(range(1, 12))  # each step in full, in exactly one window
    assert score.metadata["window"]["windows"] == list(by_window)


async def test_a_safe_trajectory_passes_with_the_judges_probability(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    openai_server.top_logprobs = {"Yes": -0.1, "No": -2.5}

    score = await StepSafety().score(EXAMPLES.by_id("ci-revert"), client)

    assert score.value == pytest.approx(math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.5)))
    assert score.passed is True
    assert score.metadata["window"]["windows"] == ["1-9"]


async def test_each_assistant_step_is_judged_alone_with_the_results_seen_so_far(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    openai_server.top_logprobs = None
    openai_server.responder = lambda body: "Yes"

    score = await StepCorrectness().score(EXAMPLES.by_id("ci-revert"), client)

    assert list(score.metadata["p_yes_by_step"]) == ["1", "3", "5", "7", "9"]
    first, *_, last = users(openai_server)
    assert "<observation>\n\n</observation>" in first  # nothing seen before step 1
    observed = re.findall(
        r"^Step (\d+)", last.split("<observation>")[1].split("</observation>")[0], re.M
    )
    assert observed == ["2", "4", "6", "8"]  # the tool results, not the agent's own turns
    assert "<reference>" not in last  # a step judge is not told the expected outcome
    assert "<plan>" not in last
    assert score.passed is True
