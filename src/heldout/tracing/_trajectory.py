"""Agent trajectories from traces: the agent, LLM and tool spans of one trace as a
:class:`~heldout.data.Trajectory`, so a production cohort of agent traces is judged by
the trajectory evaluators like a trajectories file.

The spans are read in start order:

- the **task** is the trace's input (the agent's or root span's ``input.value``, else
  the first user message an LLM span sent); a system message an LLM span sent is the
  system prompt;
- an **LLM span** (OpenInference ``LLM``, GenAI ``chat``) adds the assistant
  message(s) it returned, with their tool calls; tool results it was sent that no
  tool span reported come first, as the tool steps they were;
- a **tool span** (OpenInference ``TOOL``, GenAI ``execute_tool``) adds its result as
  the answer to the call it ran: the call with its call id, else the earliest
  unanswered call of the same tool; a tool run that no LLM span announced gets an
  assistant step calling it first, so no result is orphaned;
- the **final answer** is the root's output when no assistant step already ends with
  it.

Agent and chain spans are containers and add no step. Tool schemas come from the LLM
spans' ``llm.tools`` and ``gen_ai.tool.definitions`` and from tool spans'
``tool.parameters``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from heldout._errors import DataError
from heldout.data import Trajectory
from heldout.tracing._conventions import span_facts, span_messages, tool_result, tool_run
from heldout.tracing._group import trace_record
from heldout.tracing._models import SpanRecord, ToolCall

Message = dict[str, Any]


class _Steps:
    """The OpenAI messages of a trajectory as they are found, with their call links."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.called: dict[str, str] = {}  # call id -> tool name, in call order
        self.answered: set[str] = set()
        self.system: str | None = None

    def add_llm(self, span: SpanRecord) -> None:
        """The tool results an LLM span was sent that no tool span reported, then the
        assistant turn(s) it returned."""
        sent, returned = span_messages(span)
        self.system = self.system or next(
            (m["content"] for m in sent if m["role"] == "system" and m["content"]), None
        )
        for message in sent:
            answers = message.get("tool_call_id")
            if message["role"] != "tool" or not isinstance(answers, str):
                continue
            if answers in self.called and answers not in self.answered:
                self.answer(answers, message["content"])
        for message in returned:
            self.call(message["tool_calls"], message["content"], span.span_id)

    def add_tool(self, span: SpanRecord) -> None:
        """A tool span's result, answering the call it ran (announced first if need be)."""
        ran = tool_run(span)
        if ran is None:
            return
        call_id = self.open_call(ran.name, ran.id)
        if call_id is None:  # a tool run no LLM span announced
            (call_id,) = self.call([ran], None, span.span_id)
        result = tool_result(span)
        if result is None and span.status == "error":
            result = "(the tool failed and returned nothing)"
        self.answer(call_id, result, ran.name)

    def call(self, calls: Sequence[ToolCall], content: str | None, span_id: str) -> list[str]:
        """Add an assistant turn (text and/or calls); returns the call ids used."""
        ids = []
        wire = []
        for n, call in enumerate(calls):
            call_id = call.id if call.id and call.id not in self.called else f"{span_id}-{n}"
            self.called[call_id] = call.name
            ids.append(call_id)
            wire.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments or ""},
                }
            )
        if wire or content:
            message: Message = {"role": "assistant", "content": content}
            if wire:
                message["tool_calls"] = wire
            self.messages.append(message)
        return ids

    def answer(self, call_id: str, content: str | None, name: str | None = None) -> None:
        """Add a tool result for ``call_id`` (called and not yet answered)."""
        self.answered.add(call_id)
        message: Message = {"role": "tool", "tool_call_id": call_id, "content": content}
        if name is not None:
            message["name"] = name
        self.messages.append(message)

    def open_call(self, name: str, call_id: str | None) -> str | None:
        """The unanswered call a tool run answers: by id, else the earliest of ``name``."""
        if call_id is not None and call_id in self.called and call_id not in self.answered:
            return call_id
        return next(
            (c for c, tool in self.called.items() if tool == name and c not in self.answered),
            None,
        )

    def last_answer(self) -> str | None:
        """The text of the last step when it is a plain assistant message."""
        if not self.messages:
            return None
        last = self.messages[-1]
        if last["role"] != "assistant" or last.get("tool_calls"):
            return None
        return str(last["content"]) if last["content"] else None


def trajectory_from_spans(
    spans: Sequence[SpanRecord], *, cohort: str = "default", id: str | None = None
) -> Trajectory:
    """The trajectory an agent trace records (see the module docstring).

    Args:
        spans: The spans of one trace, in any order.
        cohort: The trajectory's cohort.
        id: Its id (default: the trace id).

    Raises:
        DataError: The spans are of no single trace, or the trace has no input (no task).
    """
    if not spans or len({s.trace_id for s in spans}) != 1:
        raise DataError("a trajectory is built from the spans of exactly one trace")
    record = trace_record(spans)
    where = f"trace {record.trace_id}"
    if not record.input:
        raise DataError(f"{where}: no span carries an input, so the trajectory has no task")
    ordered = sorted(spans, key=lambda s: (s.start_time, s.span_id))
    steps = _Steps()
    for span in ordered:
        role = span_facts(span).role
        if role == "llm":
            steps.add_llm(span)
        elif role == "tool":
            steps.add_tool(span)
    if record.output and steps.last_answer() != record.output:
        steps.messages.append({"role": "assistant", "content": record.output})
    messages: list[Message] = []
    if steps.system:
        messages.append({"role": "system", "content": steps.system})
    messages.append({"role": "user", "content": record.input})
    messages.extend(steps.messages)
    metadata = {
        "source": "trace",
        "trace_id": record.trace_id,
        "session_id": record.session_id,
        "service": record.service,
        "model": record.model,
        "started_at": record.start_time.isoformat(),
    }
    return Trajectory.from_openai(
        messages,
        id=id or record.trace_id,
        cohort=cohort,
        tools=_tools(ordered),
        metadata=metadata,
    )


# -- tool schemas -----------------------------------------------------------------------


def _tools(spans: Iterable[SpanRecord]) -> list[dict[str, Any]] | None:
    found: dict[str, dict[str, Any]] = {}
    for span in spans:
        for tool in _span_tools(span.attributes):
            found.setdefault(tool["name"], tool)
    return list(found.values()) or None


def _span_tools(a: dict[str, Any]) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    indexed: dict[int, dict[str, Any]] = {}
    for key, value in a.items():
        if key.startswith("llm.tools."):
            index, _, rest = key.removeprefix("llm.tools.").partition(".")
            if index.isdigit():
                indexed.setdefault(int(index), {})[rest] = value
    for _, fields in sorted(indexed.items()):
        schema = _json(fields.get("tool.json_schema"))
        tool = _tool(schema if isinstance(schema, dict) else {})
        name = fields.get("tool.name")
        if isinstance(name, str) and name:
            tool = {**(tool or {"parameters": schema}), "name": name}
        if tool is not None:
            description = fields.get("tool.description")
            if isinstance(description, str):
                tool["description"] = description
            tools.append(tool)
    definitions = _json(a.get("gen_ai.tool.definitions"))
    if isinstance(definitions, list):
        tools.extend(t for d in definitions if isinstance(d, dict) and (t := _tool(d)))
    if a.get("openinference.span.kind") == "TOOL" and isinstance(a.get("tool.name"), str):
        parameters = _json(a.get("tool.parameters"))
        tools.append(
            {
                "name": a["tool.name"],
                "description": str(a.get("tool.description") or ""),
                "parameters": parameters if isinstance(parameters, dict) else None,
            }
        )
    return [t for t in tools if isinstance(t.get("name"), str) and t["name"]]


def _tool(definition: dict[str, Any]) -> dict[str, Any] | None:
    """An OpenAI tool (``{type, function: {...}}``) or a bare function definition as
    ``{name, description, parameters}``; None when it names no tool."""
    inner = definition.get("function")
    function = inner if isinstance(inner, dict) else definition
    name = function.get("name")
    if not isinstance(name, str) or not name:
        return None
    parameters = function.get("parameters")
    return {
        "name": name,
        "description": str(function.get("description") or ""),
        "parameters": parameters if isinstance(parameters, dict) else None,
    }


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value
