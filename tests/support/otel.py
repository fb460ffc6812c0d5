"""Real OpenTelemetry SDK spans for the tests: an agent trace in the OpenInference and
GenAI conventions, exported or encoded as OTLP."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


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
