"""Trajectories: the chat-format loader, the Sample layout, and errors that say where."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from heldout import DataError, Sample
from heldout.data import (
    Dataset,
    Trajectory,
    iter_trajectories,
    load_trajectories,
    with_checkpoint_outputs,
    write_trajectories,
)
from heldout.examples import TRAJECTORIES

from .conftest import WriteJsonl


def where(path: Path, line: int, field: str | None = None) -> str:
    """The start of a DataError message, as a regex."""
    text = f"{path}:{line}" + (f" field {field!r}" if field else "")
    return "^" + re.escape(text + ": ")


def call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def row(**overrides: Any) -> dict[str, Any]:
    """A small valid row: a lookup, its result and an answer."""
    base: dict[str, Any] = {
        "id": "t1",
        "messages": [
            {"role": "system", "content": "Use the tools."},
            {"role": "user", "content": "What's the weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call("c1", "weather", '{"city": "Oslo"}')],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"temp_c": 4}'},
            {"role": "assistant", "content": "It is 4 °C in Oslo."},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Current weather.",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
    }
    base.update(overrides)
    return base


def with_message(index: int, message: dict[str, Any]) -> dict[str, Any]:
    messages = list(row()["messages"])
    messages[index] = message
    return row(messages=messages)


# -- the shipped examples --------------------------------------------------------------


def test_the_shipped_examples_load_and_round_trip_through_samples() -> None:
    trajectories = {t.id: t for t in iter_trajectories(TRAJECTORIES)}

    assert "inventory-transfer-lost" in trajectories
    lost = trajectories["inventory-transfer-lost"]
    assert lost.cohort == "agent"
    assert lost.system is not None
    assert [c.name for _, c in lost.tool_calls()] == ["check_stock"] * 3
    assert "Dayton" in (lost.final_answer or "")
    assert [t.name for t in lost.tools or ()] == ["check_stock", "create_transfer"]
    assert len(lost.reference_plan or ()) == 4
    for trajectory in trajectories.values():
        assert Trajectory.from_sample(trajectory.to_sample()) == trajectory


def test_a_trajectory_rides_in_a_sample_as_task_steps_and_outcome() -> None:
    dataset = load_trajectories(TRAJECTORIES)
    sample = dataset.by_id("inventory-transfer")
    trajectory = Trajectory.from_sample(sample)

    assert dataset.name == "trajectories"
    assert dataset.cohorts == ("agent",)
    assert sample.input == trajectory.task
    assert sample.reference == trajectory.expected_outcome
    steps = json.loads(sample.output or "")
    assert [m["role"] for m in steps] == ["assistant", "tool"] * 4 + ["assistant"]
    assert steps[0]["tool_calls"][0]["function"] == {
        "name": "check_stock",
        "arguments": '{"warehouse": "reno", "sku": "A-113"}',
    }
    assert set(sample.metadata["trajectory"]) == {"system", "tools", "reference_plan"}
    assert sample.metadata["label"] == "goal_reached"


def test_written_files_read_back_equal(tmp_path: Path) -> None:
    trajectories = list(iter_trajectories(TRAJECTORIES))
    write_trajectories(trajectories, tmp_path / "copy.jsonl")

    assert list(iter_trajectories(tmp_path / "copy.jsonl")) == trajectories


def test_a_dataset_of_trajectories_written_as_samples_loads_as_samples(tmp_path: Path) -> None:
    dataset = load_trajectories(TRAJECTORIES)
    dataset.to_jsonl(tmp_path / "samples.jsonl")

    again = Dataset.load(tmp_path / "samples.jsonl", name="trajectories")
    assert again == dataset
    assert [Trajectory.from_sample(s) for s in again] == [
        Trajectory.from_sample(s) for s in dataset
    ]


# -- what the reader accepts -----------------------------------------------------------


def test_openai_variants_are_read(write_jsonl: WriteJsonl) -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Weather"}, {"type": "text", "text": "in Oslo?"}],
        },
        {
            "role": "assistant",
            "content": None,
            "refusal": None,  # OpenAI exports carry it
            "tool_calls": [call("c1", "weather", {"city": "Oslo"})],  # an object, not text
        },
        {"role": "tool", "tool_call_id": "c1", "content": "4 C"},
    ]
    path = write_jsonl("t.jsonl", [{"id": 7, "messages": messages}])

    [trajectory] = iter_trajectories(path, cohort="agent")

    assert trajectory.id == "7"
    assert trajectory.cohort == "agent"
    assert trajectory.task == "Weather\n\nin Oslo?"
    assert trajectory.system is None
    assert trajectory.tools is None  # not known, which is not the same as none
    assert trajectory.steps[0].tool_calls[0].arguments == '{"city": "Oslo"}'
    assert trajectory.final_answer is None  # it ends on a tool result
    assert trajectory.to_sample().metadata == {"trajectory": {}}


def test_arguments_that_are_not_json_are_the_agents_mistake_not_a_data_error(
    write_jsonl: WriteJsonl,
) -> None:
    bad = {
        "role": "assistant",
        "content": None,
        "tool_calls": [call("c1", "weather", "{city: Oslo")],
    }
    path = write_jsonl("t.jsonl", [with_message(2, bad)])

    [trajectory] = iter_trajectories(path)

    assert trajectory.steps[0].tool_calls[0].arguments == "{city: Oslo"


def test_from_openai_builds_a_trajectory_in_memory() -> None:
    messages = row()["messages"]
    trajectory = Trajectory.from_openai(
        messages, id="mem", tools=row()["tools"], expected_outcome="The temperature in Oslo."
    )
    assert trajectory.task == "What's the weather in Oslo?"
    assert trajectory.tool("weather") is not None
    assert trajectory.result_of("c1") is not None

    with pytest.raises(DataError, match=r"^field 'messages\[3\]\.tool_call_id': trajectory 'mem'"):
        Trajectory.from_openai([*messages[:3], {**messages[3], "tool_call_id": "c9"}], id="mem")


# -- errors name the file, the line and the field --------------------------------------


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        (row(messages=[{"role": "assistant", "content": "Hi"}]), "messages", "no user message"),
        (
            row(
                messages=[{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Q"}]
            ),
            "messages",
            "only system messages may come before the task",
        ),
        (
            with_message(2, {"role": "assistant", "toolcalls": []}),
            "messages[2].toolcalls",
            "unknown key 'toolcalls'",
        ),
        (
            with_message(3, {"role": "tool", "tool_call_id": "c9", "content": "x"}),
            "messages[3].tool_call_id",
            "no earlier step made that call",
        ),
        (
            with_message(3, {"role": "tool", "content": "x"}),
            "messages[3].tool_call_id",
            "a tool result needs the tool_call_id",
        ),
        (
            with_message(
                4, {"role": "user", "content": "x", "tool_calls": [call("c2", "w", "{}")]}
            ),
            "messages[4].tool_calls",
            "a user message cannot call tools",
        ),
        (
            with_message(4, {"role": "assistant", "content": None}),
            "messages[4].content",
            "needs content or tool_calls",
        ),
        (
            with_message(1, {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}),
            "messages[1].content",
            "heldout judges text only",
        ),
        (
            with_message(2, {"role": "assistant", "tool_calls": [{"id": "c1", "function": {}}]}),
            "messages[2].tool_calls[0].function.name",
            "missing required key 'name'",
        ),
        (
            with_message(4, {"role": "function", "content": "x"}),
            "messages[4].role",
            "Input should be",
        ),
        (row(plan=["a"]), "plan", "unknown key 'plan'; a trajectory row has id, cohort, messages"),
        (
            row(tools=[*row()["tools"], {"name": "weather"}]),
            "tools[1].function.name",
            "tool 'weather' is described twice",
        ),
        (row(id=" "), "id", "id is empty"),
    ],
)
def test_a_bad_row_names_its_line_and_field(
    write_jsonl: WriteJsonl, bad: dict[str, Any], field: str, message: str
) -> None:
    path = write_jsonl("t.jsonl", [row(id="ok"), bad])

    with pytest.raises(DataError, match=where(path, 2, field) + ".*" + re.escape(message)):
        list(iter_trajectories(path))


def test_file_level_errors(write_jsonl: WriteJsonl, tmp_path: Path) -> None:
    path = write_jsonl("dup.jsonl", [row(), row()])
    with pytest.raises(
        DataError, match=where(path, 2, "id") + "duplicate id 't1': first on line 1"
    ):
        list(iter_trajectories(path))

    empty = write_jsonl("empty.jsonl", [])
    with pytest.raises(DataError, match="file holds no rows"):
        load_trajectories(empty)

    with pytest.raises(DataError, match="file not found"):
        load_trajectories(tmp_path / "missing.jsonl")

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(row()) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=where(broken, 2) + "invalid JSON"):
        list(iter_trajectories(broken))


def test_a_sample_that_does_not_hold_a_trajectory_says_which_field() -> None:
    plain = Sample(id="s1", input="Q", output="Just an answer.")
    with pytest.raises(
        DataError, match=r"^field 'output': sample 's1': output is not a trajectory"
    ):
        Trajectory.from_sample(plain)

    an_object = plain.model_copy(update={"output": '{"role": "assistant"}'})
    with pytest.raises(DataError, match="expected a JSON array of OpenAI messages, got dict"):
        Trajectory.from_sample(an_object)

    dangling = plain.model_copy(
        update={"output": json.dumps([{"role": "tool", "tool_call_id": "c1", "content": "x"}])}
    )
    with pytest.raises(DataError, match=r"field 'output\[0\]\.tool_call_id'"):
        Trajectory.from_sample(dangling)

    bad_tools = Sample(
        id="s2", input="Q", output="[]", metadata={"trajectory": {"tools": [{"type": "function"}]}}
    )
    with pytest.raises(DataError, match=r"field 'metadata\.trajectory\.tools\[0\]\.function'"):
        Trajectory.from_sample(bad_tools)

    reserved = Trajectory(id="t", task="Q", metadata={"trajectory": 1})
    with pytest.raises(DataError, match="reserved"):
        reserved.to_sample()


# -- a checkpoint's trajectories, joined to the prompts ---------------------------------


def prompts() -> Dataset:
    """The shipped tasks with no steps: what a sweep's dataset holds."""
    return Dataset.from_samples(
        t.model_copy(update={"steps": ()}).to_sample() for t in iter_trajectories(TRAJECTORIES)
    )


def test_a_checkpoint_trajectories_file_is_joined_to_the_prompts_by_id(tmp_path: Path) -> None:
    examples = list(iter_trajectories(TRAJECTORIES))
    write_trajectories(examples, tmp_path / "ckpt.jsonl")
    tasks = prompts()
    assert all(s.output is None for s in tasks)

    joined = with_checkpoint_outputs(tasks, tmp_path / "ckpt.jsonl", name="ckpt")

    assert joined.name == "ckpt"
    for sample, trajectory in zip(joined, examples, strict=True):
        assert sample.output == trajectory.steps_json()
        assert Trajectory.from_sample(sample) == trajectory  # tools and plan from the prompts


def test_a_checkpoint_trajectory_for_another_task_is_refused(
    tmp_path: Path, write_jsonl: WriteJsonl
) -> None:
    other = row(id="ci-revert")  # the id of a prompt, the task of another
    path = write_jsonl("ckpt.jsonl", [other])

    with pytest.raises(DataError, match=where(path, 1, "messages") + "the task of 'ci-revert'"):
        with_checkpoint_outputs(prompts(), path, name="ckpt")


def test_a_checkpoint_trajectory_of_no_prompt_is_refused(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl("ckpt.jsonl", [row(id="no-such-task")])

    with pytest.raises(DataError, match=where(path, 1, "id") + "id 'no-such-task' is not a prompt"):
        with_checkpoint_outputs(prompts(), path, name="ckpt")


def test_plain_output_rows_still_join_beside_trajectory_rows(write_jsonl: WriteJsonl) -> None:
    examples = list(iter_trajectories(TRAJECTORIES))
    rows: list[dict[str, Any]] = [{"id": t.id, "output": t.steps_json()} for t in examples]
    rows[1] = {"id": examples[1].id, "messages": [{"role": "user", "content": examples[1].task}]}
    path = write_jsonl("ckpt.jsonl", rows)

    joined = with_checkpoint_outputs(prompts(), path, name="ckpt")

    assert joined[0].output == examples[0].steps_json()
    assert joined[1].output == "[]"  # a trajectory with no steps: the agent did nothing
    assert Trajectory.from_sample(joined[1]).steps == ()
