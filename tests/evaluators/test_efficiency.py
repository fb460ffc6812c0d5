"""Efficiency: redundant calls and loops, by rules."""

from __future__ import annotations

from typing import Any

import pytest

from heldout.data import Trajectory, load_trajectories
from heldout.evaluators import Efficiency
from heldout.evaluators._efficiency import canonical_arguments, find_loops
from heldout.examples import TRAJECTORIES
from heldout.judges import JudgeClient
from tests.support.openai_server import OpenAIServer


def run(*calls: tuple[str, str, str]) -> Trajectory:
    """A trajectory of ``(tool, arguments, result)`` calls, one per turn."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Do it."}]
    for i, (name, arguments, result) in enumerate(calls):
        call = {"id": f"c{i}", "function": {"name": name, "arguments": arguments}}
        messages += [
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": result},
        ]
    messages.append({"role": "assistant", "content": "Done."})
    return Trajectory.from_openai(messages, id="t")


def test_loops_are_found_leftmost_and_shortest_first() -> None:
    a, b, c = ("a", "", None), ("b", "", None), ("c", "", None)
    assert find_loops([a, a, a, b]) == [(0, 1, 3)]
    assert find_loops([c, a, b, a, b, a, b, c]) == [(1, 2, 3)]
    assert find_loops([a, b, c, a, b]) == []
    assert find_loops([]) == []


def test_arguments_are_compared_as_json() -> None:
    assert canonical_arguments('{"b": 1, "a": 2}') == canonical_arguments('{"a":2,"b":1}')
    assert canonical_arguments("{not json") == "{not json"


async def test_the_shipped_loop_example(client: JudgeClient) -> None:
    sample = load_trajectories(TRAJECTORIES).by_id("city-facts-loop")

    score = await Efficiency().score(sample, client)

    assert score.value == pytest.approx(3 / 5)
    assert score.passed is False  # the default bar is 0.75
    assert score.metadata["redundant_calls"] == [
        {"step": 3, "call_id": "s2", "tool": "search_city_facts", "repeats_step": 1},
        {"step": 5, "call_id": "s3", "tool": "search_city_facts", "repeats_step": 1},
    ]
    assert score.metadata["loops"] == [
        {"steps": "1-5", "tools": ["search_city_facts"], "repeats": 3}
    ]
    assert "2 of 5 tool call(s) repeat an earlier call" in score.reason


async def test_polling_until_the_result_changes_is_not_redundant(client: JudgeClient) -> None:
    polling = run(
        ("job_status", '{"id": 7}', "running"),
        ("job_status", '{"id": 7}', "running"),
        ("job_status", '{"id": 7}', "done"),
    )
    again = run(
        ("open", '{"a": 1, "b": 2}', "x"), ("read", "{}", "y"), ("open", '{"b": 2, "a": 1}', "x")
    )

    polled = await Efficiency().score(polling.to_sample(), client)
    repeated = await Efficiency().score(again.to_sample(), client)

    # The second "running" learned nothing; the third call got news.
    assert [c["step"] for c in polled.metadata["redundant_calls"]] == [3]
    assert polled.value == pytest.approx(2 / 3)
    assert repeated.metadata["redundant_calls"][0]["repeats_step"] == 1
    assert repeated.metadata["loops"] == []


async def test_no_judge_is_asked_and_the_config_has_no_window(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    score = await Efficiency().score(run(("a", "{}", "1")).to_sample(), client)

    assert (score.value, score.judge, score.calls) == (1.0, "", 0)
    assert openai_server.requests == 0
    assert "max_chars" not in Efficiency().config()
