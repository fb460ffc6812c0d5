"""What a trace becomes: decoded spans, the facts the conventions give, whole traces."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SpanRole = Literal[
    "llm", "retriever", "tool", "chain", "agent", "embedding", "reranker", "guardrail", "other"
]
"""What a span did, by the OpenInference span kind or the GenAI operation name."""
SpanStatus = Literal["unset", "ok", "error"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpanEvent(_Frozen):
    """An event recorded on a span (GenAI conventions put messages here)."""

    name: str
    """The event's name, e.g. ``gen_ai.user.message``."""
    time: datetime | None = None
    """When it happened (UTC); None when the exporter sent no time."""
    attributes: dict[str, Any] = Field(default_factory=dict)
    """Its attributes, as plain JSON values."""


class SpanRecord(_Frozen):
    """One span as decoded from OTLP, before any convention is applied."""

    trace_id: str = Field(pattern="^[0-9a-f]{32}$")
    """The trace id, 32 lowercase hex digits."""
    span_id: str = Field(pattern="^[0-9a-f]{16}$")
    """The span id, 16 lowercase hex digits."""
    parent_span_id: str | None = None
    """The parent's span id; None for a root span."""
    name: str
    """The span's name."""
    service: str | None = None
    """``service.name`` of the resource that sent it."""
    start_time: datetime
    """When the span started (UTC)."""
    end_time: datetime
    """When the span ended (UTC)."""
    status: SpanStatus = "unset"
    """The span's status code."""
    attributes: dict[str, Any] = Field(default_factory=dict)
    """Its attributes, as plain JSON values (arrays as lists, key-value lists as dicts)."""
    events: list[SpanEvent] = Field(default_factory=list)
    """Its events, in order."""


class ToolCall(_Frozen):
    """A tool the model called, or a tool span."""

    name: str
    """The tool's name."""
    arguments: str | None = None
    """Its arguments as sent (usually JSON text)."""
    id: str | None = None
    """The call id, when the convention carries one."""


class TokenUsage(_Frozen):
    """Tokens used; a count is None when nothing reported it."""

    prompt: int | None = None
    """Input (prompt) tokens."""
    completion: int | None = None
    """Output (completion) tokens."""
    total: int | None = None
    """Total tokens (prompt + completion when not reported)."""

    def __add__(self, other: TokenUsage) -> TokenUsage:
        def add(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else a + b

        return TokenUsage(
            prompt=add(self.prompt, other.prompt),
            completion=add(self.completion, other.completion),
            total=add(self.total, other.total),
        )


class SpanFacts(_Frozen):
    """What the OpenInference or GenAI conventions say about one span."""

    role: SpanRole = "other"
    """What the span did."""
    input: str | None = None
    """The input (``input.value``, or the last user message)."""
    output: str | None = None
    """The output (``output.value``, or the assistant's message)."""
    model: str | None = None
    """The model name."""
    documents: list[str] = Field(default_factory=list)
    """Texts a retriever returned."""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    """Tools called (by the model, or the tool this span ran)."""
    usage: TokenUsage = Field(default_factory=TokenUsage)
    """Tokens used by this span."""
    session_id: str | None = None
    """``session.id`` or ``gen_ai.conversation.id``."""


class TraceRecord(_Frozen):
    """A whole trace: its spans summed up into one input, output and context."""

    trace_id: str
    """The trace id."""
    session_id: str | None
    """The session (conversation) the trace belongs to, when a span names one."""
    service: str | None
    """The service of the root span."""
    name: str
    """The root span's name."""
    start_time: datetime
    """The earliest span start (UTC)."""
    end_time: datetime
    """The latest span end (UTC)."""
    status: SpanStatus
    """``error`` when any span failed, else the root span's status."""
    input: str | None
    """The root span's input, else the first LLM span's."""
    output: str | None
    """The root span's output, else the last LLM span's."""
    context: str | None
    """Every retrieved document, in order, separated by blank lines."""
    model: str | None
    """The model of the first LLM span."""
    tool_calls: list[ToolCall]
    """Every tool call, in span order."""
    usage: TokenUsage
    """Tokens summed over the spans."""
    n_spans: int
    """Spans received for the trace so far."""
    input_key: str | None
    """A hash of the normalised input: equal for near-identical inputs."""
