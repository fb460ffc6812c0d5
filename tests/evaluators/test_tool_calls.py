"""ToolCallCorrectness: the rules without a judge, then the judge for meaning."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from heldout.data import Trajectory, load_trajectories
from heldout.evaluators import ToolCallCorrectness
from heldout.evaluators._tool_calls import check_call, parse_arguments
from heldout.examples import TRAJECTORIES
from heldout.judges import JudgeClient
from tests.support.openai_server import OpenAIServer

EXAMPLES = load_trajectories(TRAJECTORIES)
STOCK = {
    "type": "function",
    "function": {
        "name": "check_stock",
        "parameters": {
            "type": "object",
            "properties": {
                "warehouse": {"enum": ["reno", "dayton"]},
                "sku": {"type": "string", "pattern": "^[A-Z]-[0-9]{3}$"},
            },
            "required": ["warehouse", "sku"],
            "additionalProperties": False,
        },
    },
}


def calling(*arguments: str, tools: list[Any] | None = None) -> Trajectory:
    """A trajectory that calls ``check_stock`` once per argument string."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "How many A-113 in Reno?"}]
    for i, text in enumerate(arguments):
        function = {"name": "check_stock", "arguments": text}
        messages += [
            {"role": "assistant", "tool_calls": [{"id": f"c{i}", "function": function}]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": "120"},
        ]
    return Trajectory.from_openai(messages, id="t", tools=tools)


@pytest.mark.parametrize(
    ("arguments", "problems"),
    [
        ('{"warehouse": "reno", "sku": "A-113"}', []),
        ("", ["$: missing required property 'warehouse'", "$: missing required property 'sku'"]),
        ('{"warehouse": "reno", "sku": "A-113"', ["arguments are not valid JSON: Expecting"]),
        ('["reno", "A-113"]', ["arguments must be a JSON object, got list"]),
        (
            '{"warehouse": "austin", "sku": "A113"}',
            ["$.warehouse: 'austin' is not one of", "$.sku"],
        ),
        (
            '{"warehouse": "reno", "sku": "A-113", "force": true}',
            ["$: property 'force' is not allowed"],
        ),
    ],
)
def test_each_call_is_checked_against_its_tools_schema(arguments: str, problems: list[str]) -> None:
    trajectory = calling(arguments, tools=[STOCK])
    step, call = trajectory.tool_calls()[0]

    found = check_call(trajectory, step, call)

    assert (found.step, found.call_id, found.tool) == (1, "c0", "check_stock")
    assert len(found.problems) == len(problems)
    for problem, expected in zip(found.problems, problems, strict=True):
        assert problem.startswith(expected)


def test_an_unknown_tool_is_named_with_the_tools_there_are() -> None:
    messages = [
        {"role": "user", "content": "Q"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c", "function": {"name": "stock", "arguments": "{}"}}],
        },
    ]
    trajectory = Trajectory.from_openai(messages, id="t", tools=[STOCK])
    found = check_call(trajectory, *trajectory.tool_calls()[0])
    assert found.problems == ("unknown tool 'stock'; the agent was given: check_stock",)


def test_empty_arguments_read_as_an_empty_object() -> None:
    assert parse_arguments("  ") == ({}, None)


async def test_by_the_rules_alone_the_score_is_the_share_of_valid_calls(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    score = await ToolCallCorrectness(semantic=False).score(
        EXAMPLES.by_id("calendar-bad-arguments"), client
    )

    assert score.status == "ok"
    assert (score.value, score.passed, score.judge) == (0.5, False, "")
    assert score.metadata["schemas_known"] is True
    [violation] = score.metadata["violations"]
    assert (violation["step"], violation["call_id"], violation["tool"]) == (1, "k1", "create_event")
    assert violation["problems"] == [
        "$.duration_minutes: expected integer, got string",
        "$.attendees: expected array, got string",
    ]
    assert openai_server.requests == 0
    assert score.reason == "1 of 2 tool call(s) pass the schema rules."


async def test_without_tool_schemas_only_the_json_is_checked(client: JudgeClient) -> None:
    trajectory = calling('{"warehouse": "nowhere"}', "{oops")  # tools unknown

    score = await ToolCallCorrectness(semantic=False).score(trajectory.to_sample(), client)

    assert score.metadata["schemas_known"] is False
    assert score.value == 0.5
    assert [v["call_id"] for v in score.metadata["violations"]] == ["c1"]


async def test_the_judge_scores_fit_over_windows_of_calls(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    # The judge objects to the window that updates another order's shipping.
    openai_server.top_logprobs = None
    openai_server.responder = lambda body: (
        "No" if "calls update_shipping" in body["messages"][-1]["content"] else "Yes"
    )
    evaluator = ToolCallCorrectness(max_chars=700, max_step_chars=300)

    score = await evaluator.score(EXAMPLES.by_id("refund-drift"), client)

    windows = score.metadata["window"]["windows"]
    assert len(windows) > 2
    judged = score.metadata["p_fit_by_window"]
    assert set(judged) <= set(windows)
    assert openai_server.requests == len(judged)  # windows without a call are not asked
    assert [w for w, p in judged.items() if p == 0.0] == [
        w for w in judged if int(w.split("-")[0]) <= 7 <= int(w.split("-")[1])
    ]
    assert score.metadata["schema_valid_share"] == 1.0
    assert (score.value, score.passed) == (0.0, False)


async def test_the_value_is_the_valid_share_times_the_judges_p_yes(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    openai_server.top_logprobs = {"Yes": -0.2, "No": -1.8}
    p_yes = math.exp(-0.2) / (math.exp(-0.2) + math.exp(-1.8))

    score = await ToolCallCorrectness().score(EXAMPLES.by_id("calendar-bad-arguments"), client)

    assert score.metadata["p_fit"] == pytest.approx(p_yes)
    assert score.value == pytest.approx(0.5 * p_yes)
    assert score.calls == 1


async def test_a_broken_tool_schema_is_a_data_error_not_the_agents_fault(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    broken = json.loads(json.dumps(STOCK))
    broken["function"]["parameters"]["properties"]["sku"]["type"] = "strnig"
    trajectory = calling('{"warehouse": "reno", "sku": "A-113"}', tools=[broken])

    score = await ToolCallCorrectness().score(trajectory.to_sample(), client)

    assert (score.status, score.error_kind, score.value) == ("error", "invalid_trajectory", None)
    assert "tool 'check_stock' are not a valid JSON Schema: unknown type 'strnig'" in (
        score.error or ""
    )
    assert openai_server.requests == 0
