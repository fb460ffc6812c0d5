"""The store's statements and row conversions, built once per dialect.

Each statement is built when the store opens and reused for every call, so SQLAlchemy
compiles it once and a write costs a cache lookup plus the driver's execute.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.dml import Insert

from heldout.data._sample import Sample
from heldout.evaluators._score import Score
from heldout.judges._types import JudgeReply
from heldout.store._models import (
    CohortAggregate,
    RunRecord,
    StoredSample,
    StoredScore,
    sample_key,
)
from heldout.store._schema import judge_cache, runs, samples, scores


def upsert(dialect: str, table: sa.Table, keys: Sequence[str], update: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET update = excluded`` for ``dialect``.

    With no ``update`` columns it is ``ON CONFLICT DO NOTHING`` (insert-or-ignore).
    """
    if dialect == "sqlite":
        lite = sqlite.insert(table)
        if not update:
            return lite.on_conflict_do_nothing(index_elements=list(keys))
        return lite.on_conflict_do_update(
            index_elements=list(keys), set_={c: lite.excluded[c] for c in update}
        )
    pg = postgresql.insert(table)
    if not update:
        return pg.on_conflict_do_nothing(index_elements=list(keys))
    return pg.on_conflict_do_update(
        index_elements=list(keys), set_={c: pg.excluded[c] for c in update}
    )


def _non_key(table: sa.Table, *keep: str) -> list[str]:
    return [c.name for c in table.columns if not c.primary_key and c.name not in keep]


@dataclass(frozen=True)
class Statements:
    """The prepared statements of one dialect."""

    upsert_run: Insert
    upsert_samples: Insert
    upsert_score: Insert
    put_reply: Insert
    get_reply: sa.Select[tuple[Any]]

    @classmethod
    def build(cls, dialect: str) -> Statements:
        """The statements for ``dialect`` (``sqlite`` or ``postgresql``)."""
        return cls(
            # Reopening a run keeps when it was created.
            upsert_run=upsert(dialect, runs, ["id"], _non_key(runs, "created_at")),
            upsert_samples=upsert(dialect, samples, ["run_id", "sample_key"], _non_key(samples)),
            upsert_score=upsert(
                dialect, scores, ["run_id", "sample_key", "evaluator"], _non_key(scores)
            ),
            put_reply=upsert(dialect, judge_cache, ["key"], []),
            get_reply=sa.select(judge_cache.c.reply).where(
                judge_cache.c.key == sa.bindparam("key")
            ),
        )


def dumps(value: Any) -> str:
    """JSON for the JSON columns that both backends accept.

    NaN and infinities (say, a log-probability of -inf) become null and NUL characters
    U+FFFD: PostgreSQL refuses both, and a row it refuses would stop a run at the same
    row on every resume. The clean-up walks the value only when the fast path finds one.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_clean(value), ensure_ascii=False)
    # json.dumps writes NUL as \u0000 (a false alarm on a literal backslash is harmless).
    return json.dumps(_clean(value), ensure_ascii=False) if "\\u0000" in text else text


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def clean_text(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with NUL characters in its strings replaced by U+FFFD, in place.

    PostgreSQL text cannot hold NUL; SQLite gets the same, so both store the same.
    """
    for name, value in row.items():
        if type(value) is str and "\x00" in value:
            row[name] = value.replace("\x00", "\ufffd")
    return row


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC: SQLite returns naive datetimes (stored as UTC), PostgreSQL
    returns them in the session's time zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def score_row(run_id: str, score: Score, checkpoint: str | None, at: datetime) -> dict[str, Any]:
    """The ``scores`` row of ``score``; attribute reads, not ``model_dump``, for speed."""
    row = {
        "run_id": run_id,
        "sample_key": sample_key(score.sample_id, checkpoint),
        "evaluator": score.evaluator,
        "sample_id": score.sample_id,
        "cohort": score.cohort,
        "checkpoint": checkpoint,
        "status": score.status,
        "value": score.value,
        "passed": score.passed,
        "reason": score.reason,
        "error_kind": score.error_kind,
        "error": score.error,
        "judge": score.judge,
        "template_version": score.template_version,
        "calls": score.calls,
        "cached_calls": score.cached_calls,
        "metadata": score.metadata,
        "created_at": at,
    }
    return clean_text(row)


def stored_score(row: RowMapping) -> StoredScore:
    """The StoredScore of a ``scores`` row."""
    return StoredScore(
        sample_id=row["sample_id"],
        cohort=row["cohort"],
        evaluator=row["evaluator"],
        status=row["status"],
        value=row["value"],
        passed=row["passed"],
        reason=row["reason"],
        error_kind=row["error_kind"],
        error=row["error"],
        judge=row["judge"],
        template_version=row["template_version"],
        calls=row["calls"],
        cached_calls=row["cached_calls"],
        metadata=row.get("metadata") or {},
        checkpoint=row["checkpoint"],
        sample_key=row["sample_key"],
    )


def sample_row(run_id: str, sample: Sample, checkpoint: str | None) -> dict[str, Any]:
    """The ``samples`` row of ``sample``."""
    row = {
        "run_id": run_id,
        "sample_key": sample_key(sample.id, checkpoint),
        "sample_id": sample.id,
        "cohort": sample.cohort,
        "checkpoint": checkpoint,
        "input": sample.input,
        "output": sample.output,
        "context": sample.context,
        "reference": sample.reference,
        "metadata": sample.metadata,
    }
    return clean_text(row)


def stored_sample(row: RowMapping) -> StoredSample:
    """The StoredSample of a ``samples`` row."""
    return StoredSample(
        id=row["sample_id"],
        cohort=row["cohort"],
        input=row["input"],
        output=row["output"],
        context=row["context"],
        reference=row["reference"],
        metadata=row.get("metadata") or {},
        checkpoint=row["checkpoint"],
        sample_key=row["sample_key"],
    )


def run_record(row: RowMapping) -> RunRecord:
    """The RunRecord of a ``runs`` row."""
    return RunRecord(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        config=row["config"],
        status=row["status"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )


def aggregate_query(run_id: str) -> sa.Select[Any]:
    """Counts, mean and fail rate per (checkpoint, cohort, evaluator) of one run.

    ``mean`` averages ``value`` over ``ok`` scores only (AVG skips the NULLs the CASE
    gives the others); ``fail_rate`` is failed over ``ok`` scores with a verdict,
    NULL when there are none.
    """
    ok = scores.c.status == "ok"

    def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    n_failed = count(sa.and_(ok, scores.c.passed.is_(sa.false())))
    n_verdict = count(sa.and_(ok, scores.c.passed.is_not(None)))
    return (
        sa.select(
            scores.c.checkpoint,
            scores.c.cohort,
            scores.c.evaluator,
            count(ok).label("n_ok"),
            count(scores.c.status == "error").label("n_error"),
            count(scores.c.status == "skipped").label("n_skipped"),
            n_failed.label("n_failed"),
            sa.func.avg(sa.case((ok, scores.c.value))).label("mean"),
            (sa.cast(n_failed, sa.Float) / sa.func.nullif(n_verdict, 0)).label("fail_rate"),
        )
        .where(scores.c.run_id == run_id)
        .group_by(scores.c.checkpoint, scores.c.cohort, scores.c.evaluator)
    )


def cohort_aggregate(row: RowMapping) -> CohortAggregate:
    """The CohortAggregate of an :func:`aggregate_query` row."""
    mean, fail_rate = row["mean"], row["fail_rate"]
    return CohortAggregate(
        checkpoint=row["checkpoint"],
        cohort=row["cohort"],
        evaluator=row["evaluator"],
        n_ok=int(row["n_ok"]),
        n_error=int(row["n_error"]),
        n_skipped=int(row["n_skipped"]),
        n_failed=int(row["n_failed"]),
        mean=None if mean is None else float(mean),
        fail_rate=None if fail_rate is None else float(fail_rate),
    )


BATCH = 1000
"""Rows per executemany when writing many samples, scores or replies."""


def execute_batched(conn: Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
    """Run ``statement`` for ``rows``, ``BATCH`` rows per executemany."""
    for start in range(0, len(rows), BATCH):
        conn.execute(statement, rows[start : start + BATCH])


def aggregate_order(a: CohortAggregate) -> tuple[bool, str, str, str]:
    """Sort key for aggregates: a plain eval (no checkpoint) first, as on both backends."""
    # The backends disagree on where NULLs sort, so the order is made here.
    return (a.checkpoint is not None, a.checkpoint or "", a.cohort, a.evaluator)


def reply_row(key: str, reply: JudgeReply, provider: str, at: datetime) -> dict[str, Any]:
    """The judge_cache row for a reply cached under ``key``."""
    return {
        "key": key,
        "provider": provider,
        "model": reply.model,
        "reply": reply.model_dump(mode="json"),
        "created_at": at,
    }
