"""Traces in the store: spans, the traces they make up, and cohort membership.

Everything one ingest does (spans, the traces they touch, the cohorts those traces
join or leave, the window and cap trimmed) commits in one transaction of the store:
a request is stored whole or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection, RowMapping

from heldout.data import Dataset, Sample
from heldout.store import Store
from heldout.store._schema import cohort_members, trace_spans, traces
from heldout.store._sql import as_utc, clean_text, now, upsert
from heldout.tracing._conventions import span_facts
from heldout.tracing._group import by_trace, trace_record
from heldout.tracing._models import SpanEvent, SpanRecord, TokenUsage, ToolCall, TraceRecord
from heldout.tracing._placement import place, trim
from heldout.tracing._rules import CohortRules, SampleShape
from heldout.tracing._trajectory import trajectory_from_spans

_BATCH = 500


class IngestResult(BaseModel):
    """What one ingest stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spans: int
    """Spans received (a span sent again replaces the stored one)."""
    traces: int
    """Traces those spans belong to."""
    joined: dict[str, int] = Field(default_factory=dict)
    """Per cohort: how many of these traces are members after the ingest."""


class CohortSize(BaseModel):
    """A cohort and its members now."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort: str
    """The cohort's name."""
    members: int
    """Traces in it."""
    newest: datetime | None
    """The start of its newest member."""


def store_spans(
    store: Store,
    spans: Sequence[SpanRecord],
    rules: CohortRules | None = None,
    *,
    at: datetime | None = None,
) -> IngestResult:
    """Store ``spans``, rebuild the traces they belong to and refresh their cohorts.

    Args:
        store: The store.
        spans: Decoded spans (see :func:`~heldout.tracing.decode_request`).
        rules: The cohort rules; None: no cohort is touched.
        at: The time the rolling windows are measured from (default now).

    Raises:
        StoreError: The database refused the write; nothing of it is stored.
    """
    at = at or now()
    span_rows = [_span_row(span, at) for span in spans]
    trace_ids = list(dict.fromkeys(span.trace_id for span in spans))

    def work(conn: Connection) -> IngestResult:
        statement = upsert(
            store.dialect,
            trace_spans,
            ["trace_id", "span_id"],
            [c.name for c in trace_spans.c if not c.primary_key],
        )
        for start in range(0, len(span_rows), _BATCH):
            conn.execute(statement, span_rows[start : start + _BATCH])
        joined = rebuild(conn, store.dialect, trace_ids, rules, at)
        return IngestResult(spans=len(spans), traces=len(trace_ids), joined=joined)

    if not spans:
        return IngestResult(spans=0, traces=0)
    return store.transaction(f"store {len(spans)} spans", work, write=True)


def refresh_cohorts(
    store: Store, rules: CohortRules, *, at: datetime | None = None
) -> dict[str, int]:
    """Apply ``rules`` anew to every trace within the longest window: for changed rules.

    Returns:
        The members of each cohort of ``rules`` after the refresh.
    """
    at = at or now()
    oldest = at - max((rules.window_of(r) for r in rules.cohorts), default=timedelta(0))
    # Oldest first, so of two near-identical inputs the older stays, as on ingest.
    query = (
        sa.select(traces.c.trace_id)
        .where(traces.c.start_time >= oldest)
        .order_by(traces.c.start_time, traces.c.trace_id)
    )
    ids = store.transaction(
        "list traces to refresh", lambda conn: [r[0] for r in conn.execute(query)]
    )
    for start in range(0, len(ids), _BATCH):
        work = partial(rebuild, dialect=store.dialect, trace_ids=ids[start : start + _BATCH])
        store.transaction("refresh cohorts", partial(work, rules=rules, at=at), write=True)
    names = [rule.name for rule in rules.cohorts]
    store.transaction("trim cohorts", partial(trim, rules=rules, at=at, names=names), write=True)
    sizes = {s.cohort: s.members for s in cohort_sizes(store)}
    return {rule.name: sizes.get(rule.name, 0) for rule in rules.cohorts}


def rebuild(
    conn: Connection,
    dialect: str,
    trace_ids: Sequence[str],
    rules: CohortRules | None,
    at: datetime,
) -> dict[str, int]:
    """Rebuild the ``traces`` rows of ``trace_ids`` from all their spans; re-place them
    in the cohorts of ``rules``. Returns, per cohort, how many of them are members."""
    stored: list[SpanRecord] = []
    for start in range(0, len(trace_ids), _BATCH):
        batch = trace_ids[start : start + _BATCH]
        query = sa.select(trace_spans).where(trace_spans.c.trace_id.in_(batch))
        stored.extend(span_from_row(row) for row in conn.execute(query).mappings())
    groups = by_trace(stored)
    records = {tid: trace_record(group) for tid, group in groups.items()}
    statement = upsert(
        dialect, traces, ["trace_id"], [c.name for c in traces.c if c.name != "trace_id"]
    )
    rows = [_trace_row(record, at) for record in records.values()]
    for start in range(0, len(rows), _BATCH):
        conn.execute(statement, rows[start : start + _BATCH])
    if rules is None or not rules.cohorts:
        return {}
    return place(conn, dialect, records, groups, rules, at)


# -- reading --------------------------------------------------------------------------------


def cohort_sizes(store: Store) -> list[CohortSize]:
    """Every production cohort with its member count, by name."""
    m = cohort_members.c
    query = (
        sa.select(m.cohort, sa.func.count().label("n"), sa.func.max(m.trace_time).label("newest"))
        .group_by(m.cohort)
        .order_by(m.cohort)
    )
    rows = store.transaction(
        "count cohort members", lambda conn: conn.execute(query).mappings().all()
    )
    return [
        CohortSize(
            cohort=row["cohort"],
            members=int(row["n"]),
            newest=None if row["newest"] is None else as_utc(row["newest"]),
        )
        for row in rows
    ]


def members_among(store: Store, trace_ids: Sequence[str]) -> dict[str, int]:
    """Per cohort, how many of ``trace_ids`` are members now."""
    ids = list(dict.fromkeys(trace_ids))
    m = cohort_members.c

    def work(conn: Connection) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(ids), _BATCH):
            query = (
                sa.select(m.cohort, sa.func.count())
                .where(m.trace_id.in_(ids[start : start + _BATCH]))
                .group_by(m.cohort)
            )
            for row in conn.execute(query):
                found[str(row[0])] = found.get(str(row[0]), 0) + int(row[1])
        return found

    return store.transaction("count cohort members", work)


def cohort_traces(
    store: Store, cohort: str, *, limit: int = 50, before: str | None = None
) -> list[TraceRecord]:
    """A page of a cohort's traces, newest first.

    Args:
        store: The store.
        cohort: The cohort.
        limit: Traces per page.
        before: The last trace id of the previous page (keyset pagination).
    """
    m = cohort_members.c
    query = sa.select(traces).join(cohort_members, m.trace_id == traces.c.trace_id)
    query = query.where(m.cohort == cohort)
    if before is not None:
        anchor = (
            sa.select(m.trace_time)
            .where(m.cohort == cohort, m.trace_id == before)
            .scalar_subquery()
        )
        query = query.where(
            sa.or_(m.trace_time < anchor, sa.and_(m.trace_time == anchor, m.trace_id < before))
        )
    query = query.order_by(m.trace_time.desc(), m.trace_id.desc()).limit(limit)
    rows = store.transaction(
        f"read cohort {cohort!r}", lambda conn: conn.execute(query).mappings().all()
    )
    return [trace_from_row(row) for row in rows]


def get_trace(store: Store, trace_id: str) -> tuple[TraceRecord, list[SpanRecord]] | None:
    """A trace and its spans (in start order), or None."""

    def work(conn: Connection) -> tuple[TraceRecord, list[SpanRecord]] | None:
        row = (
            conn.execute(sa.select(traces).where(traces.c.trace_id == trace_id)).mappings().first()
        )
        if row is None:
            return None
        spans = conn.execute(
            sa.select(trace_spans)
            .where(trace_spans.c.trace_id == trace_id)
            .order_by(trace_spans.c.start_time, trace_spans.c.span_id)
        ).mappings()
        return trace_from_row(row), [span_from_row(s) for s in spans]

    return store.transaction(f"read trace {trace_id!r}", work)


def cohort_dataset(store: Store, cohort: str, *, sample_as: SampleShape = "trace") -> Dataset:
    """A production cohort as a :class:`~heldout.data.Dataset`, like any other.

    With ``sample_as="trace"`` each member trace becomes a sample: id the trace id,
    the trace's input, output and context, and its session, model, service, tool
    calls and token usage in metadata. With ``"trajectory"`` each becomes the
    :class:`~heldout.data.Trajectory` its agent, LLM and tool spans record (see
    :func:`~heldout.tracing.trajectory_from_spans`), as a trajectory sample for the
    trajectory evaluators. Oldest first, so a growing cohort keeps its order.
    """
    m = cohort_members.c
    query = (
        sa.select(traces)
        .join(cohort_members, m.trace_id == traces.c.trace_id)
        .where(m.cohort == cohort)
        .order_by(m.trace_time, m.trace_id)
    )
    rows = store.transaction(
        f"read cohort {cohort!r}", lambda conn: conn.execute(query).mappings().all()
    )
    name = f"production-{cohort}"
    if sample_as == "trace":
        return Dataset((trace_sample(trace_from_row(row), cohort) for row in rows), name=name)
    ids = [row["trace_id"] for row in rows]
    spans = by_trace(_spans_of(store, ids))
    return Dataset(
        (trajectory_from_spans(spans[tid], cohort=cohort).to_sample() for tid in ids),
        name=name,
    )


def _spans_of(store: Store, trace_ids: Sequence[str]) -> list[SpanRecord]:
    def work(conn: Connection) -> list[SpanRecord]:
        found: list[SpanRecord] = []
        for start in range(0, len(trace_ids), _BATCH):
            query = sa.select(trace_spans).where(
                trace_spans.c.trace_id.in_(trace_ids[start : start + _BATCH])
            )
            found.extend(span_from_row(row) for row in conn.execute(query).mappings())
        return found

    return store.transaction(f"read the spans of {len(trace_ids)} traces", work)


def trace_sample(trace: TraceRecord, cohort: str) -> Sample:
    """A trace as a Sample of ``cohort``: its input, output and context, the rest in
    metadata."""
    return Sample(
        id=trace.trace_id,
        cohort=cohort,
        input=trace.input or "",
        output=trace.output,
        context=trace.context,
        metadata={
            "source": "trace",
            "session_id": trace.session_id,
            "service": trace.service,
            "model": trace.model,
            "started_at": trace.start_time.isoformat(),
            "tool_calls": [call.model_dump() for call in trace.tool_calls],
            "usage": trace.usage.model_dump(),
        },
    )


# -- rows -------------------------------------------------------------------------------


def _span_row(span: SpanRecord, at: datetime) -> dict[str, Any]:
    row = {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "role": span_facts(span).role,
        "service": span.service,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "status": span.status,
        "attributes": span.attributes,
        "events": [event.model_dump(mode="json") for event in span.events],
        "ingested_at": at,
    }
    return clean_text(row)


def span_from_row(row: RowMapping) -> SpanRecord:
    """The SpanRecord of a ``trace_spans`` row."""
    return SpanRecord(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        name=row["name"],
        service=row["service"],
        start_time=as_utc(row["start_time"]),
        end_time=as_utc(row["end_time"]),
        status=row["status"],
        attributes=row["attributes"] or {},
        events=[SpanEvent.model_validate(e) for e in row["events"] or []],
    )


def _trace_row(record: TraceRecord, at: datetime) -> dict[str, Any]:
    row = {
        "trace_id": record.trace_id,
        "session_id": record.session_id,
        "service": record.service,
        "name": record.name,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "status": record.status,
        "input": record.input,
        "output": record.output,
        "context": record.context,
        "model": record.model,
        "tool_calls": [call.model_dump() for call in record.tool_calls],
        "prompt_tokens": record.usage.prompt,
        "completion_tokens": record.usage.completion,
        "total_tokens": record.usage.total,
        "n_spans": record.n_spans,
        "input_key": record.input_key,
        "updated_at": at,
    }
    return clean_text(row)


def trace_from_row(row: RowMapping) -> TraceRecord:
    """The TraceRecord of a ``traces`` row."""
    return TraceRecord(
        trace_id=row["trace_id"],
        session_id=row["session_id"],
        service=row["service"],
        name=row["name"],
        start_time=as_utc(row["start_time"]),
        end_time=as_utc(row["end_time"]),
        status=row["status"],
        input=row["input"],
        output=row["output"],
        context=row["context"],
        model=row["model"],
        tool_calls=[ToolCall.model_validate(c) for c in row["tool_calls"] or []],
        usage=TokenUsage(
            prompt=row["prompt_tokens"],
            completion=row["completion_tokens"],
            total=row["total_tokens"],
        ),
        n_spans=row["n_spans"],
        input_key=row["input_key"],
    )
