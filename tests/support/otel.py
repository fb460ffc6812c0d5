"""Real OpenTelemetry SDK spans for the tests: an agent trace in the OpenInference and
GenAI conventions, agent trajectories replayed as the spans an instrumented agent
records, exported or encoded as OTLP."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from heldout.data import Step, ToolCall, Trajectory
from heldout.data._trajectory_wire import step_to_wire, tool_to_wire


def provider(exporter: SpanExporter, service: str = "shop-assistant") -> TracerProvider:
    """A tracer provider that exports each span as it ends."""
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": service}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider


def agent_trace(
    tracer_provider: TracerProvider,
    question: str,
    answer: str,
    *,
    session: str = "session-1",
    model: str = "policy-rlaif-7b",
    extra: dict[str, Any] | None = None,
) -> None:
    """One agent turn: a chain span around a retriever span and a GenAI chat span."""
    tracer = tracer_provider.get_tracer("tests.support.otel")
    attributes = {
        "openinference.span.kind": "CHAIN",
        "input.value": question,
        "session.id": session,
        **(extra or {}),
    }
    with tracer.start_as_current_span("agent-turn", attributes=attributes) as root:
        with tracer.start_as_current_span(
            "retrieve",
            attributes={
                "openinference.span.kind": "RETRIEVER",
                "retrieval.documents.0.document.content": "Refunds are paid within 5 days.",
                "retrieval.documents.1.document.content": "Orders ship in 2 days.",
            },
        ):
            pass
        with tracer.start_as_current_span(
            "chat",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": 42,
                "gen_ai.usage.output_tokens": 7,
            },
        ) as chat:
            chat.add_event("gen_ai.user.message", {"content": question})
            chat.add_event(
                "gen_ai.choice",
                {
                    "message": json.dumps(
                        {
                            "content": answer,
                            "tool_calls": [
                                {
                                    "id": "call-1",
                                    "function": {"name": "lookup_order", "arguments": "{}"},
                                }
                            ],
                        }
                    )
                },
            )
        root.set_attribute("output.value", answer)


def encoded(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The OTLP request the SDK's exporters would send for ``spans``."""
    return encode_spans(spans)


def recorded(question: str, answer: str, **kwargs: Any) -> ExportTraceServiceRequest:
    """One agent trace recorded in memory and encoded as an OTLP request."""
    memory = InMemorySpanExporter()
    agent_trace(provider(memory), question, answer, **kwargs)
    return encoded(memory.get_finished_spans())


Convention = Literal["openinference", "genai"]


def replay(
    tracer_provider: TracerProvider,
    trajectory: Trajectory,
    *,
    convention: Convention,
    tool_spans: bool = True,
) -> None:
    """Record ``trajectory`` as an instrumented agent would: an agent span around one
    LLM span per assistant turn and (with ``tool_spans``) one tool span per result.

    ``openinference`` writes OpenInference attributes (``llm.input_messages``,
    ``llm.tools``, TOOL spans with ``input.value``/``output.value``); ``genai`` writes
    the GenAI ones (``gen_ai.input.messages`` with ``tool_call_response`` parts,
    ``gen_ai.tool.definitions``, ``execute_tool`` spans). Each LLM span is also sent
    the tool results since the previous one, as real agents send them. Spans get
    increasing, explicit start times, so their order is the trajectory's.
    """
    tracer = tracer_provider.get_tracer("tests.support.otel")
    start = time.time_ns() - 600 * 10**9  # ten minutes ago: within any cohort window
    clock = itertools.count(start, 1_000_000)
    tools = [tool_to_wire(t) for t in trajectory.tools or ()]
    root_attributes: dict[str, Any] = (
        {"openinference.span.kind": "AGENT", "input.value": trajectory.task}
        if convention == "openinference"
        else {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": trajectory.task}]}]
            ),
        }
    )
    root = tracer.start_span("agent", attributes=root_attributes, start_time=next(clock))
    context = trace.set_span_in_context(root)
    results: list[Step] = []
    for step in trajectory.steps:
        if step.role == "assistant":
            attributes = _llm_attributes(trajectory, step, results, tools, convention)
            results = []
            name = "llm" if convention == "openinference" else "chat"
            span = tracer.start_span(name, context, attributes=attributes, start_time=next(clock))
            span.end(end_time=next(clock))
        elif step.role == "tool":
            results.append(step)
            if tool_spans:
                call = _call_of(trajectory, step.tool_call_id or "")
                span = tracer.start_span(
                    f"tool {call.name}",
                    context,
                    attributes=_tool_attributes(call, step, convention),
                    start_time=next(clock),
                )
                span.end(end_time=next(clock))
    final = trajectory.final_answer or ""
    if convention == "openinference":
        root.set_attribute("output.value", final)
    else:
        parts = [{"type": "text", "content": final}]
        root.set_attribute(
            "gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": parts}])
        )
    root.end(end_time=next(clock))


def _call_of(trajectory: Trajectory, call_id: str) -> ToolCall:
    return next(call for _, call in trajectory.tool_calls() if call.id == call_id)


def _llm_attributes(
    trajectory: Trajectory,
    step: Step,
    results: list[Step],
    tools: list[dict[str, Any]],
    convention: Convention,
) -> dict[str, Any]:
    sent: list[dict[str, Any]] = []
    if trajectory.system:
        sent.append({"role": "system", "content": trajectory.system})
    sent.append({"role": "user", "content": trajectory.task})
    sent += [
        {"role": "tool", "content": r.content, "tool_call_id": r.tool_call_id} for r in results
    ]
    if convention == "genai":
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "policy-agent",
            "gen_ai.tool.definitions": json.dumps(
                [{"type": "function", **t["function"]} for t in tools]
            ),
            "gen_ai.input.messages": json.dumps([_genai_message(m) for m in sent]),
            "gen_ai.output.messages": json.dumps([_genai_message(step_to_wire(step))]),
        }
    attributes: dict[str, Any] = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "policy-agent",
    }
    for i, tool in enumerate(tools):
        attributes[f"llm.tools.{i}.tool.json_schema"] = json.dumps(tool)
    for prefix, messages in (
        ("llm.input_messages", sent),
        ("llm.output_messages", [step_to_wire(step)]),
    ):
        for i, message in enumerate(messages):
            at = f"{prefix}.{i}.message"
            attributes[f"{at}.role"] = message["role"]
            if message.get("content") is not None:
                attributes[f"{at}.content"] = message["content"]
            if message.get("tool_call_id"):
                attributes[f"{at}.tool_call_id"] = message["tool_call_id"]
            for j, call in enumerate(message.get("tool_calls") or ()):
                attributes[f"{at}.tool_calls.{j}.tool_call.id"] = call["id"]
                attributes[f"{at}.tool_calls.{j}.tool_call.function.name"] = call["function"][
                    "name"
                ]
                attributes[f"{at}.tool_calls.{j}.tool_call.function.arguments"] = call["function"][
                    "arguments"
                ]
    return attributes


def _genai_message(message: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if message["role"] == "tool":
        parts.append(
            {
                "type": "tool_call_response",
                "id": message["tool_call_id"],
                "response": message["content"],
            }
        )
    elif message.get("content") is not None:
        parts.append({"type": "text", "content": message["content"]})
    for call in message.get("tool_calls") or ():
        parts.append(
            {
                "type": "tool_call",
                "id": call["id"],
                "name": call["function"]["name"],
                "arguments": json.loads(call["function"]["arguments"]),
            }
        )
    return {"role": message["role"], "parts": parts}


def _tool_attributes(call: ToolCall, result: Step, convention: Convention) -> dict[str, Any]:
    if convention == "genai":
        return {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.id,
            "gen_ai.tool.call.arguments": call.arguments,
            "gen_ai.tool.call.result": result.content or "",
        }
    return {
        "openinference.span.kind": "TOOL",
        "tool.name": call.name,
        "tool_call.id": call.id,
        "input.value": call.arguments,
        "output.value": result.content or "",
    }
