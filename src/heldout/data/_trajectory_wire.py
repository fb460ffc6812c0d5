"""The OpenAI chat format of trajectory rows, as read from files and written back.

These models check the shape of one row; :mod:`heldout.data._trajectory` turns a
checked row into a :class:`~heldout.data.Trajectory`. The checks of a step's shape and
of the links between calls and results live here too, so a file row and a Trajectory
built in memory are held to the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if TYPE_CHECKING:
    from heldout.data._trajectory import Step, ToolSchema

IGNORED_KEYS = ("refusal", "annotations", "audio")
"""Message keys of OpenAI exports that say nothing heldout judges; dropped on reading."""

ROW_KEYS = "id, cohort, messages, tools, expected_outcome, reference_plan and metadata"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WireFunction(_Wire):
    """``tool_calls[i].function``: the tool's name and the arguments."""

    name: str = Field(min_length=1)
    """The tool called."""
    arguments: Any = ""
    """JSON text as OpenAI sends it; an object, as some logs keep it, is accepted."""

    @field_validator("arguments")
    @classmethod
    def _text_or_object(cls, value: Any) -> Any:
        if not isinstance(value, str | dict):
            raise ValueError(f"must be JSON text or an object, got {type(value).__name__}")
        return value

    def argument_text(self) -> str:
        """The arguments as JSON text, as written when they were text."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)


class WireToolCall(_Wire):
    """One entry of an assistant message's ``tool_calls``."""

    id: str = Field(min_length=1)
    """The call id that the tool result names."""
    type: Literal["function"] = "function"
    """Always ``function``."""
    function: WireFunction
    """The call itself."""


class WireMessage(_Wire):
    """One chat message."""

    role: Literal["system", "user", "assistant", "tool"]
    """Who speaks."""
    content: Any = None
    """Text, a list of ``{"type": "text", "text": ...}`` parts, or null."""
    tool_calls: list[WireToolCall] | None = None
    """The tools an assistant message calls."""
    tool_call_id: str | None = None
    """For a tool message: the call it answers."""
    name: str | None = None
    """For a tool message: the tool's name."""

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in IGNORED_KEYS}
            if value.get("function_call", 0) is None:  # the legacy field, when empty
                del value["function_call"]
        return value

    @field_validator("content")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
            for p in value
        ):
            return value
        raise ValueError(
            'must be a string, a list of {"type": "text", "text": ...} parts, or null '
            "(heldout judges text only)"
        )


class WireToolDef(_Wire):
    """``tools[i].function``: a tool as OpenAI describes it."""

    name: str = Field(min_length=1)
    """The tool's name."""
    description: str = ""
    """What the tool does."""
    parameters: dict[str, Any] | None = None
    """The JSON Schema of its arguments."""
    strict: bool | None = None
    """OpenAI's strict flag (read, not used)."""


class WireTool(_Wire):
    """One entry of ``tools``: ``{"type": "function", "function": {...}}`` or the bare
    function object."""

    type: Literal["function"] = "function"
    """Always ``function``."""
    function: WireToolDef
    """The tool."""

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, value: Any) -> Any:
        if isinstance(value, dict) and "function" not in value and "name" in value:
            return {"type": "function", "function": value}
        return value


class WireRow(_Wire):
    """One line of a trajectories file."""

    id: str
    """The row id: a string, or an integer made a string."""
    cohort: str | None = None
    """The cohort."""
    messages: list[WireMessage] = Field(min_length=1)
    """System prompt, task, then steps."""
    tools: list[WireTool] | None = None
    """The tools offered to the agent."""
    expected_outcome: str | None = None
    """What success looks like."""
    reference_plan: list[str] | None = None
    """A plan known to work."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Anything else."""

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError("id is empty; every trajectory needs an id")
        return value


def error_field(exc: ValidationError) -> tuple[str, str]:
    """``(field, message)`` of the first error, the field as ``messages[3].content``."""
    first = exc.errors()[0]
    field = ""
    for part in first["loc"]:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    kind = first["type"]
    if kind == "extra_forbidden":
        key = first["loc"][-1]
        where = "a message" if "messages" in field else "a trajectory row"
        if first["loc"] == (key,):
            return field, f"unknown key {key!r}; {where} has {ROW_KEYS}"
        return field, f"unknown key {key!r} in {field.rsplit('.', 1)[0]}"
    if kind == "missing":
        return field, f"missing required key {first['loc'][-1]!r}"
    message = str(first["msg"]).removeprefix("Value error, ")
    return field, message


def message_text(content: Any) -> str:
    """The text of a message's content: text parts joined by blank lines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n\n".join(part["text"] for part in content)


def step_problem(
    role: str, content: str | None, n_calls: int, tool_call_id: str | None
) -> tuple[str, str] | None:
    """``(field, message)`` of what is wrong with one step's shape, or None."""
    if n_calls and role != "assistant":
        return "tool_calls", f"a {role} message cannot call tools"
    if role == "tool" and not tool_call_id:
        return "tool_call_id", "a tool result needs the tool_call_id of the call it answers"
    if role != "tool" and tool_call_id is not None:
        return "tool_call_id", f"a {role} message has no tool_call_id"
    if role == "assistant" and not n_calls and not content:
        return "content", "an assistant message needs content or tool_calls"
    return None


def link_problem(steps: Sequence[Step]) -> tuple[int, str, str] | None:
    """``(step index, field, message)`` of a broken call/result link, or None.

    Every call id is unique, and every tool result answers one earlier call, once.
    """
    called: set[str] = set()
    answered: set[str] = set()
    for index, step in enumerate(steps):
        for number, call in enumerate(step.tool_calls):
            if call.id in called:
                return index, f"tool_calls[{number}].id", f"call id {call.id!r} is used twice"
            called.add(call.id)
        if step.role != "tool" or step.tool_call_id is None:
            continue
        if step.tool_call_id not in called:
            return (
                index,
                "tool_call_id",
                f"tool result for {step.tool_call_id!r}, but no earlier step made that call",
            )
        if step.tool_call_id in answered:
            return index, "tool_call_id", f"call {step.tool_call_id!r} is answered twice"
        answered.add(step.tool_call_id)
    return None


def step_to_wire(step: Step) -> dict[str, Any]:
    """One step as an OpenAI chat message."""
    message: dict[str, Any] = {"role": step.role, "content": step.content}
    if step.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in step.tool_calls
        ]
    if step.tool_call_id is not None:
        message["tool_call_id"] = step.tool_call_id
    if step.name is not None:
        message["name"] = step.name
    return message


def tool_to_wire(tool: ToolSchema) -> dict[str, Any]:
    """One tool in the OpenAI ``tools`` format."""
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    return {"type": "function", "function": function}
