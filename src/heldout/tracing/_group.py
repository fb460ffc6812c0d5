"""Spans grouped into traces, and traces into sessions.

A trace's input and output are its root span's when the root carries them (an agent
or chain span usually does), else the first LLM span's input and the last LLM span's
output. Its context is every document its retriever spans returned, in span order.
A session is the ``session.id`` (OpenInference) or ``gen_ai.conversation.id`` (GenAI)
of any of its spans.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence

from heldout.tracing._conventions import span_facts
from heldout.tracing._models import SpanFacts, SpanRecord, TokenUsage, TraceRecord

_NON_WORD = re.compile(r"[\W_]+")
_DIGITS = re.compile(r"\d+")


def by_trace(spans: Iterable[SpanRecord]) -> dict[str, list[SpanRecord]]:
    """Spans grouped by trace id, each group in start order, traces in first-seen order."""
    groups: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        groups[span.trace_id].append(span)
    for group in groups.values():
        group.sort(key=lambda s: (s.start_time, s.span_id))
    return dict(groups)


def trace_record(spans: Sequence[SpanRecord]) -> TraceRecord:
    """One trace summed up from all of its spans received so far.

    Args:
        spans: The spans of one trace (any order; at least one).

    Raises:
        ValueError: ``spans`` is empty or mixes traces.
    """
    if not spans or len({s.trace_id for s in spans}) != 1:
        raise ValueError("trace_record takes the spans of exactly one trace")
    ordered = sorted(spans, key=lambda s: (s.start_time, s.span_id))
    facts = {s.span_id: span_facts(s) for s in ordered}
    ids = set(facts)
    roots = [s for s in ordered if s.parent_span_id is None or s.parent_span_id not in ids]
    root = roots[0] if roots else ordered[0]
    root_facts = facts[root.span_id]
    llm = [facts[s.span_id] for s in ordered if facts[s.span_id].role == "llm"]
    text_input = root_facts.input or next((f.input for f in llm if f.input), None)
    output = root_facts.output or next((f.output for f in reversed(llm) if f.output), None)
    documents = [d for s in ordered for d in facts[s.span_id].documents]
    usage = sum((f.usage for f in _usage_sources(ordered, facts)), TokenUsage())
    return TraceRecord(
        trace_id=root.trace_id,
        session_id=next((f.session_id for f in facts.values() if f.session_id), None),
        service=root.service,
        name=root.name,
        start_time=ordered[0].start_time,
        end_time=max(s.end_time for s in ordered),
        status="error" if any(s.status == "error" for s in ordered) else root.status,
        input=text_input,
        output=output,
        context="\n\n".join(documents) if documents else None,
        model=next((f.model for f in llm if f.model), root_facts.model),
        tool_calls=[call for s in ordered for call in facts[s.span_id].tool_calls],
        usage=usage,
        n_spans=len(ordered),
        input_key=input_key(text_input),
    )


def _usage_sources(ordered: Sequence[SpanRecord], facts: dict[str, SpanFacts]) -> list[SpanFacts]:
    # LLM spans hold the real counts; a chain that also reports a total would count
    # them twice, so other spans are summed only when no LLM span reports any.
    llm = [facts[s.span_id] for s in ordered if facts[s.span_id].role == "llm"]
    if any(f.usage != TokenUsage() for f in llm):
        return llm
    return [facts[s.span_id] for s in ordered]


def normalise(text: str) -> str:
    """``text`` reduced to what near-identical inputs share.

    Unicode compatibility forms are folded, case is ignored, every run of punctuation
    and whitespace becomes one space, and every number becomes ``0``: "What's the
    refund for order #1234?" and "what's the refund for order 98765" normalise alike.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", _DIGITS.sub("0", folded)).strip()


def input_key(text: str | None) -> str | None:
    """The dedup key of an input: a hash of :func:`normalise`; None without input."""
    if text is None or not text.strip():
        return None
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:32]
