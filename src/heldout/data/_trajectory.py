"""Agent trajectories: a task, then the steps a tool-using agent took to do it.

A trajectory file holds one JSON object per line, in the OpenAI chat format::

    {"id": "inventory-1", "cohort": "agent",
     "messages": [
       {"role": "system", "content": "You run the warehouse tools."},
       {"role": "user", "content": "Move 40 units of A-113 ..."},           <- the task
       {"role": "assistant", "content": null, "tool_calls": [{"id": "c1",
         "type": "function",
         "function": {"name": "check_stock", "arguments": "{\\"site\\": \\"reno\\"}"}}]},
       {"role": "tool", "tool_call_id": "c1", "content": "{\\"units\\": 120}"},
       {"role": "assistant", "content": "Done: ..."}                         <- final answer
     ],
     "tools": [{"type": "function", "function": {"name": "check_stock", "parameters": {}}}],
     "expected_outcome": "A transfer of 40 units from the site with most stock.",
     "reference_plan": ["check every site", "transfer from the largest"],
     "metadata": {"source": "staging"}}

System messages before the first user message are the system prompt; the first user
message is the task; every message after it is a step. ``tools``, ``expected_outcome``,
``reference_plan`` and ``metadata`` are optional. Keys that OpenAI exports carry but
heldout does not judge (``refusal``, ``annotations``, ``audio``) are dropped; any other
unknown key is an error, so a typo such as ``toolcalls`` cannot hide the calls.

A trajectory rides through the runner, the store and RegressionEval as a
:class:`~heldout.data.Sample`:

- ``input``: the task;
- ``output``: the steps, as a JSON array of OpenAI messages (what the policy did: the
  part that differs from one checkpoint to the next; None when there are no steps);
- ``reference``: the expected outcome;
- ``metadata["trajectory"]``: what belongs to the task: ``system``, ``tools`` (in the
  OpenAI format) and ``reference_plan``.

Reading and writing files, and joining a checkpoint's trajectories to the prompts, are
in :mod:`heldout.data._trajectory_io`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from heldout._errors import DataError
from heldout.data._mapping import Row
from heldout.data._sample import Sample
from heldout.data._trajectory_wire import (
    WireMessage,
    WireRow,
    WireTool,
    error_field,
    link_problem,
    message_text,
    step_problem,
    step_to_wire,
    tool_to_wire,
)

TRAJECTORY_KEY = "trajectory"
"""The ``Sample.metadata`` key that holds the task's system prompt, tools and plan."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Model):
    """One call of a tool, as the agent wrote it."""

    id: str = Field(min_length=1)
    """The call id that the tool result names (``tool_call_id``)."""
    name: str = Field(min_length=1)
    """The tool called."""
    arguments: str
    """The arguments as JSON text, kept as written: an argument string that is not
    valid JSON is the agent's mistake to score, not an error in the data."""


class Step(_Model):
    """One message after the task: the agent's turn, a tool result, or a user turn."""

    role: Literal["assistant", "tool", "user", "system"]
    """``assistant`` (text and/or tool calls), ``tool`` (a result), ``user`` or
    ``system`` (a turn the harness or the user inserted)."""
    content: str | None = None
    """The text of the message; None for an assistant turn made of tool calls only."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The tools an assistant turn calls."""
    tool_call_id: str | None = None
    """For a tool result: the id of the call it answers."""
    name: str | None = None
    """For a tool result: the tool's name, when the source gives it."""

    @model_validator(mode="after")
    def _shape(self) -> Self:
        problem = step_problem(self.role, self.content, len(self.tool_calls), self.tool_call_id)
        if problem is not None:
            raise ValueError(problem[1])
        return self


class ToolSchema(_Model):
    """A tool the agent could call, with the JSON Schema of its arguments."""

    name: str = Field(min_length=1)
    """The tool's name."""
    description: str = ""
    """What the tool does, as the agent was told."""
    parameters: dict[str, Any] | None = None
    """The JSON Schema of the arguments object; None when not known."""


class Trajectory(_Model):
    """A task and the steps an agent took, with what is known of the right outcome."""

    id: str = Field(min_length=1)
    """Stable id, unique within a dataset."""
    cohort: str = "default"
    """The held-out cohort."""
    task: str
    """The user's request: the first user message."""
    system: str | None = None
    """The system prompt the agent ran with, when known."""
    steps: tuple[Step, ...] = ()
    """Every message after the task, in order."""
    tools: tuple[ToolSchema, ...] | None = None
    """The tools offered to the agent; None when not known."""
    expected_outcome: str | None = None
    """What a successful trajectory achieves, when known."""
    reference_plan: tuple[str, ...] | None = None
    """A plan known to work, one step per item, when known."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Anything else carried from the source row."""

    @model_validator(mode="after")
    def _links(self) -> Self:
        problem = link_problem(self.steps)
        if problem is not None:
            raise ValueError(f"step {problem[0] + 1}: {problem[2]}")
        if self.tools is not None:
            names = [tool.name for tool in self.tools]
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise ValueError(f"tool {twice[0]!r} is described twice")
        return self

    @property
    def final_answer(self) -> str | None:
        """The last step's text when it is an assistant turn without tool calls."""
        if not self.steps:
            return None
        last = self.steps[-1]
        if last.role != "assistant" or last.tool_calls or not last.content:
            return None
        return last.content

    def tool_calls(self) -> list[tuple[int, ToolCall]]:
        """Every tool call with the 1-based number of the step that made it."""
        return [
            (number, call)
            for number, step in enumerate(self.steps, start=1)
            for call in step.tool_calls
        ]

    def result_of(self, call_id: str) -> Step | None:
        """The tool result that answers the call ``call_id``, if there is one."""
        return next((s for s in self.steps if s.role == "tool" and s.tool_call_id == call_id), None)

    def tool(self, name: str) -> ToolSchema | None:
        """The schema of the tool ``name``, if the tools are known and it is one."""
        return next((t for t in self.tools or () if t.name == name), None)

    # -- Samples ---------------------------------------------------------------------

    def steps_json(self) -> str:
        """The steps as a JSON array of OpenAI messages: ``Sample.output``."""
        wire = [step_to_wire(step) for step in self.steps]
        return json.dumps(wire, ensure_ascii=False, separators=(",", ":"))

    def to_sample(self) -> Sample:
        """This trajectory as a Sample (see the module docstring for the layout).

        Raises:
            DataError: ``metadata`` already has a ``trajectory`` key.
        """
        if TRAJECTORY_KEY in self.metadata:
            raise DataError(
                f"trajectory {self.id!r}: metadata key {TRAJECTORY_KEY!r} is reserved for "
                "the task's tools and plan; rename it",
                field=f"metadata.{TRAJECTORY_KEY}",
            )
        task: dict[str, Any] = {}
        if self.system is not None:
            task["system"] = self.system
        if self.tools is not None:
            task["tools"] = [tool_to_wire(t) for t in self.tools]
        if self.reference_plan is not None:
            task["reference_plan"] = list(self.reference_plan)
        return Sample(
            id=self.id,
            cohort=self.cohort,
            input=self.task,
            output=self.steps_json() if self.steps else None,
            reference=self.expected_outcome,
            metadata={**self.metadata, TRAJECTORY_KEY: task},
        )

    @classmethod
    def from_sample(cls, sample: Sample) -> Trajectory:
        """Read back the trajectory a Sample carries.

        A Sample without ``metadata["trajectory"]`` is read as a trajectory whose
        tools, plan and system prompt are unknown.

        Raises:
            DataError: ``output`` is not a JSON array of messages, or the metadata is
                not in the layout :meth:`to_sample` writes. The message names the
                sample and the field.
        """
        where = f"sample {sample.id!r}"
        task = sample.metadata.get(TRAJECTORY_KEY, {})
        if not isinstance(task, dict):
            raise DataError(
                f"{where}: metadata.{TRAJECTORY_KEY} must be an object",
                field=f"metadata.{TRAJECTORY_KEY}",
            )
        row: Row = {
            "id": sample.id,
            "cohort": sample.cohort,
            "expected_outcome": sample.reference,
            "metadata": {k: v for k, v in sample.metadata.items() if k != TRAJECTORY_KEY},
            "messages": [{"role": "user", "content": sample.input}],
            **{k: task[k] for k in ("tools", "reference_plan") if k in task},
        }
        if task.get("system") is not None:
            row["messages"].insert(0, {"role": "system", "content": task["system"]})
        fixed = len(row["messages"])
        steps = parse_steps_json(sample.output, where) if sample.output is not None else []
        row["messages"].extend(steps)

        def rename(field: str) -> str:  # a field of the row, named as the Sample's
            head, bracket, rest = field.partition("]")
            if bracket and head.startswith("messages["):
                index = int(head.removeprefix("messages["))
                if index >= fixed:
                    return f"output[{index - fixed}]{rest}"
                return "input" if index == fixed - 1 else f"metadata.{TRAJECTORY_KEY}.system"
            if field == "expected_outcome":
                return "reference"
            return field if field in ("id", "cohort") else f"metadata.{TRAJECTORY_KEY}.{field}"

        return trajectory_from_row(row, where=where, rename=rename)

    @classmethod
    def from_openai(
        cls,
        messages: Sequence[Any],
        *,
        id: str,
        cohort: str = "default",
        tools: Sequence[Any] | None = None,
        expected_outcome: str | None = None,
        reference_plan: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Trajectory:
        """A trajectory from an OpenAI chat message list, as a JSONL row holds it.

        This is the door for any other source of agent runs (an agent framework's
        log, or traces once heldout ingests them): turn the run into chat messages
        with ``tool_calls`` and pass them here.

        Raises:
            DataError: The messages are not a task followed by valid steps; the message
                names the field (``messages[3].tool_calls[0].function.name``).
        """
        row: Row = {"id": id, "cohort": cohort, "messages": list(messages)}
        optional = {
            "tools": None if tools is None else list(tools),
            "expected_outcome": expected_outcome,
            "reference_plan": None if reference_plan is None else list(reference_plan),
            "metadata": metadata,
        }
        row.update({k: v for k, v in optional.items() if v is not None})
        return trajectory_from_row(row, where=f"trajectory {id!r}")


def parse_steps_json(text: str, where: str) -> list[Any]:
    """The message list a ``Sample.output`` holds, or a DataError naming ``where``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{where}: output is not a trajectory: not JSON ({exc.msg}); a trajectory "
            "sample's output is a JSON array of OpenAI messages",
            field="output",
        ) from exc
    if not isinstance(value, list):
        raise DataError(
            f"{where}: output is not a trajectory: expected a JSON array of OpenAI "
            f"messages, got {type(value).__name__}",
            field="output",
        )
    return value


Rename = Callable[[str], str]


def trajectory_from_row(
    row: Row,
    *,
    where: str,
    cohort: str | None = None,
    path: str | None = None,
    line: int | None = None,
    rename: Rename | None = None,
) -> Trajectory:
    """Check one wire row and build its Trajectory; errors name the field.

    Args:
        row: The row in the chat format.
        cohort: The cohort when the row names none.
        where: Names the source in messages when there is no file.
        path: The file, when the row comes from one.
        line: The row's line in the file.
        rename: Maps a field of the row to the name the user knows it by (a Sample's
            ``output[2]`` rather than the row's ``messages[4]``).
    """

    def fail(field: str, message: str) -> DataError:
        shown = rename(field) if rename is not None else field
        return DataError(
            message if path else f"{where}: {message}", path=path, line=line, field=shown
        )

    try:
        wire = WireRow.model_validate(row)
    except ValidationError as exc:
        raise fail(*error_field(exc)) from exc
    start = next((i for i, m in enumerate(wire.messages) if m.role == "user"), None)
    if start is None:
        raise fail("messages", "no user message: the first user message is the task")
    if any(m.role != "system" for m in wire.messages[:start]):
        raise fail("messages", "only system messages may come before the task")
    steps = []
    for index, message in enumerate(wire.messages[start + 1 :], start=start + 1):
        problem = step_problem(
            message.role, message.content, len(message.tool_calls or ()), message.tool_call_id
        )
        if problem is not None:
            raise fail(f"messages[{index}].{problem[0]}", problem[1])
        steps.append(_step(message))
    link = link_problem(steps)
    if link is not None:
        step_index, field, problem_text = link
        raise fail(f"messages[{step_index + start + 1}].{field}", problem_text)
    system = [message_text(m.content) for m in wire.messages[:start]]
    tools = None if wire.tools is None else tuple(_tool(t) for t in wire.tools)
    names = [tool.name for tool in tools or ()]
    for number, name in enumerate(names):
        if name in names[:number]:
            raise fail(f"tools[{number}].function.name", f"tool {name!r} is described twice")
    return Trajectory(
        id=wire.id,
        cohort=wire.cohort or cohort or "default",
        task=message_text(wire.messages[start].content),
        system="\n\n".join(system) if system else None,
        steps=tuple(steps),
        tools=tools,
        expected_outcome=wire.expected_outcome,
        reference_plan=None if wire.reference_plan is None else tuple(wire.reference_plan),
        metadata=wire.metadata,
    )


def _step(message: WireMessage) -> Step:
    calls = tuple(
        ToolCall(id=c.id, name=c.function.name, arguments=c.function.argument_text())
        for c in message.tool_calls or ()
    )
    content = None if message.content is None else message_text(message.content)
    return Step(
        role=message.role,
        content=content,
        tool_calls=calls,
        tool_call_id=message.tool_call_id,
        name=message.name,
    )


def _tool(tool: WireTool) -> ToolSchema:
    spec = tool.function
    return ToolSchema(name=spec.name, description=spec.description, parameters=spec.parameters)
