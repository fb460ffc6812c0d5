"""OpenInference and GenAI conventions: input, output, context, model, tools, tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from heldout.tracing import SpanEvent, SpanRecord, decode_request, span_facts, trace_record
from tests.support.otel import recorded

T0 = datetime(2025, 1, 1, tzinfo=UTC)
CALL = "llm.output_messages.0.message.tool_calls.0.tool_call"


def span(
    attributes: dict[str, Any], events: list[SpanEvent] | None = None, **kw: Any
) -> SpanRecord:
    fields: dict[str, Any] = {
        "trace_id": "1" * 32,
        "span_id": "2" * 16,
        "name": "s",
        "start_time": T0,
        "end_time": T0,
        "attributes": attributes,
        "events": events or [],
    }
    return SpanRecord(**(fields | kw))


def test_openinference_llm_span() -> None:
    facts = span_facts(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o",
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "Be brief.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "Weather in Oslo?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "Checking.",
                f"{CALL}.function.name": "weather",
                f"{CALL}.function.arguments": '{"city": "Oslo"}',
                "llm.token_count.prompt": 12,
                "llm.token_count.completion": 3,
                "llm.token_count.total": 15,
                "session.id": "s-9",
            }
        )
    )
    assert facts.role == "llm"
    assert facts.input == "Weather in Oslo?"
    assert facts.output == "Checking."
    assert facts.model == "gpt-4o"
    assert [(c.name, c.arguments) for c in facts.tool_calls] == [("weather", '{"city": "Oslo"}')]
    assert (facts.usage.prompt, facts.usage.completion, facts.usage.total) == (12, 3, 15)
    assert facts.session_id == "s-9"


def test_openinference_retriever_and_tool_spans() -> None:
    retriever = span_facts(
        span(
            {
                "openinference.span.kind": "RETRIEVER",
                "retrieval.documents.1.document.content": "second",
                "retrieval.documents.0.document.content": "first",
            }
        )
    )
    assert retriever.role == "retriever"
    assert retriever.documents == ["first", "second"]
    tool = span_facts(
        span(
            {
                "openinference.span.kind": "TOOL",
                "tool.name": "search",
                "tool.parameters": '{"type": "object"}',  # the tool's schema, not the call
                "input.value": '{"q": "kettle"}',
                "output.value": "3 results",
            }
        )
    )
    assert tool.role == "tool"
    assert [(c.name, c.arguments) for c in tool.tool_calls] == [("search", '{"q": "kettle"}')]


def test_genai_messages_as_attributes() -> None:
    messages_in = [{"role": "user", "parts": [{"type": "text", "content": "Hi there"}]}]
    messages_out = [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Hello!"},
                {"type": "tool_call", "name": "greet", "arguments": {"loud": True}, "id": "c1"},
            ],
        }
    ]
    facts = span_facts(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m-req",
                "gen_ai.response.model": "m-resp",
                "gen_ai.input.messages": json.dumps(messages_in),
                "gen_ai.output.messages": json.dumps(messages_out),
                "gen_ai.usage.input_tokens": 5,
                "gen_ai.usage.output_tokens": 2,
                "gen_ai.conversation.id": "conv-1",
            }
        )
    )
    assert (facts.role, facts.input, facts.output, facts.model) == (
        "llm",
        "Hi there",
        "Hello!",
        "m-resp",
    )
    assert [(c.name, c.arguments, c.id) for c in facts.tool_calls] == [
        ("greet", '{"loud": true}', "c1")
    ]
    assert (facts.usage.prompt, facts.usage.completion, facts.usage.total) == (5, 2, 7)
    assert facts.session_id == "conv-1"


def test_genai_legacy_indexed_prompt_and_completion() -> None:
    facts = span_facts(
        span(
            {
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-3.5",
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "2+2?",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "4",
                "gen_ai.usage.prompt_tokens": 4,
                "gen_ai.usage.completion_tokens": 1,
            }
        )
    )
    assert (facts.role, facts.input, facts.output) == ("llm", "2+2?", "4")
    assert facts.usage.total == 5


def test_genai_events() -> None:
    events = [
        SpanEvent(name="gen_ai.system.message", attributes={"content": "Be kind."}),
        SpanEvent(name="gen_ai.user.message", attributes={"content": "Tell me a joke"}),
        SpanEvent(
            name="gen_ai.choice",
            attributes={"message": json.dumps({"content": "No.", "role": "assistant"})},
        ),
    ]
    facts = span_facts(span({"gen_ai.operation.name": "chat"}, events))
    assert (facts.input, facts.output) == ("Tell me a joke", "No.")


def test_a_trace_from_the_sdk_sums_its_spans() -> None:
    spans = decode_request(
        recorded("Where is my refund?", "Within 5 days.").SerializeToString(), "protobuf"
    )
    trace = trace_record(spans)
    assert trace.input == "Where is my refund?"
    assert trace.output == "Within 5 days."
    assert trace.context == "Refunds are paid within 5 days.\n\nOrders ship in 2 days."
    assert trace.model == "policy-rlaif-7b"
    assert [c.name for c in trace.tool_calls] == ["lookup_order"]
    assert (trace.usage.prompt, trace.usage.completion, trace.usage.total) == (42, 7, 49)
    assert trace.session_id == "session-1"
    assert trace.n_spans == 3
    assert trace.name == "agent-turn"


def test_without_a_root_input_the_llm_spans_give_input_and_output() -> None:
    root = span({"openinference.span.kind": "AGENT"}, span_id="a" * 16)
    first = span(
        {"openinference.span.kind": "LLM", "input.value": "first q", "output.value": "draft"},
        span_id="b" * 16,
        parent_span_id="a" * 16,
        start_time=T0.replace(second=1),
        end_time=T0.replace(second=2),
    )
    last = span(
        {"openinference.span.kind": "LLM", "input.value": "second q", "output.value": "final"},
        span_id="c" * 16,
        parent_span_id="a" * 16,
        start_time=T0.replace(second=3),
        end_time=T0.replace(second=4),
    )
    trace = trace_record([last, root, first])
    assert (trace.input, trace.output, trace.name) == ("first q", "final", "s")
    assert trace.end_time == T0.replace(second=4)
