"""Tracing: production traces in, production cohorts out.

OpenTelemetry traces arrive over OTLP (protobuf or JSON, from ``POST /v1/traces`` on
``heldout serve`` or an exported file via ``heldout ingest``). The OpenInference and
GenAI conventions turn each trace's spans into one input, output and retrieved
context with its model, tool calls and token usage, or into the agent trajectory it
records; cohort rules (YAML) place traces in cohorts (conditions, sampling, a
classifier judge), with near-identical inputs deduplicated, capped and kept in a
rolling window; and a cohort becomes a :class:`~heldout.data.Dataset` to evaluate
like any other.
"""

from heldout.tracing._classify import (
    ClassifierError,
    ClassifierStatus,
    ClassifyResult,
    CohortQuestion,
    classifier_errors,
    classifier_status,
    classify_traces,
)
from heldout.tracing._conventions import span_facts, span_messages
from heldout.tracing._group import by_trace, input_key, normalise, trace_record
from heldout.tracing._ingest import ingest_file, ingest_otlp, read_otlp_file
from heldout.tracing._models import (
    SpanEvent,
    SpanFacts,
    SpanRecord,
    SpanRole,
    SpanStatus,
    TokenUsage,
    ToolCall,
    TraceRecord,
)
from heldout.tracing._otlp import Encoding, decode_request, encoding_of
from heldout.tracing._rules import (
    Classify,
    CohortRule,
    CohortRules,
    Condition,
    Dedup,
    load_cohort_rules,
    parse_duration,
)
from heldout.tracing._schedule import build_evaluator, evaluate_cohorts
from heldout.tracing._storage import (
    CohortSize,
    IngestResult,
    cohort_dataset,
    cohort_sizes,
    cohort_traces,
    get_trace,
    members_among,
    refresh_cohorts,
    store_spans,
)
from heldout.tracing._trajectory import trajectory_from_spans

__all__ = [
    "ClassifierError",
    "ClassifierStatus",
    "Classify",
    "ClassifyResult",
    "CohortQuestion",
    "CohortRule",
    "CohortRules",
    "CohortSize",
    "Condition",
    "Dedup",
    "Encoding",
    "IngestResult",
    "SpanEvent",
    "SpanFacts",
    "SpanRecord",
    "SpanRole",
    "SpanStatus",
    "TokenUsage",
    "ToolCall",
    "TraceRecord",
    "build_evaluator",
    "by_trace",
    "classifier_errors",
    "classifier_status",
    "classify_traces",
    "cohort_dataset",
    "cohort_sizes",
    "cohort_traces",
    "decode_request",
    "encoding_of",
    "evaluate_cohorts",
    "get_trace",
    "ingest_file",
    "ingest_otlp",
    "input_key",
    "load_cohort_rules",
    "members_among",
    "normalise",
    "parse_duration",
    "read_otlp_file",
    "refresh_cohorts",
    "span_facts",
    "span_messages",
    "store_spans",
    "trace_record",
    "trajectory_from_spans",
]
