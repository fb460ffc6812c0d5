"""The tables of the results store, as SQLAlchemy Core tables.

This is the schema the code reads and writes. The database gets it from the Alembic
revisions in ``migrations/versions``, never from ``metadata.create_all``: a change here
ships with a new revision, and ``tests/store`` checks that the two agree.

Core rather than ORM on purpose: ``write_score`` runs once per judged row, and a Core
insert on one reused connection costs a fraction of an ORM unit of work.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# Named constraints, so later migrations can refer to them on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

RUN_STATUSES = ("running", "done", "failed", "interrupted")
SCORE_STATUSES = ("ok", "error", "skipped")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_in("status", RUN_STATUSES), name="status"),
)

samples = sa.Table(
    "samples",
    metadata,
    sa.Column("run_id", sa.String, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("sample_key", sa.String, primary_key=True),
    sa.Column("sample_id", sa.String, nullable=False),
    sa.Column("cohort", sa.String, nullable=False),
    sa.Column("checkpoint", sa.String, nullable=True),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("output", sa.Text, nullable=True),
    sa.Column("context", sa.Text, nullable=True),
    sa.Column("reference", sa.Text, nullable=True),
    sa.Column("metadata", JSONType, nullable=False),
)

scores = sa.Table(
    "scores",
    metadata,
    sa.Column("run_id", sa.String, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("sample_key", sa.String, primary_key=True),
    sa.Column("evaluator", sa.String, primary_key=True),
    sa.Column("sample_id", sa.String, nullable=False),
    sa.Column("cohort", sa.String, nullable=False),
    sa.Column("checkpoint", sa.String, nullable=True),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("passed", sa.Boolean, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("error_kind", sa.String, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("judge", sa.String, nullable=False),
    sa.Column("template_version", sa.String, nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("cached_calls", sa.Integer, nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_in("status", SCORE_STATUSES), name="status"),
    # Serves aggregate(): one pass per run over (evaluator, cohort, status).
    sa.Index("ix_scores_aggregate", "run_id", "evaluator", "cohort", "status"),
)

judge_cache = sa.Table(
    "judge_cache",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("model", sa.String, nullable=False),
    sa.Column("reply", JSONType, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# -- production traces (heldout.tracing) and dashboard labels (heldout.web) -------------

trace_spans = sa.Table(
    "trace_spans",
    metadata,
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("span_id", sa.String(16), primary_key=True),
    sa.Column("parent_span_id", sa.String(16), nullable=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("service", sa.String, nullable=True),
    sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("attributes", JSONType, nullable=False),
    sa.Column("events", JSONType, nullable=False),
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
)

traces = sa.Table(
    "traces",
    metadata,
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("session_id", sa.String, nullable=True),
    sa.Column("service", sa.String, nullable=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("input", sa.Text, nullable=True),
    sa.Column("output", sa.Text, nullable=True),
    sa.Column("context", sa.Text, nullable=True),
    sa.Column("model", sa.String, nullable=True),
    sa.Column("tool_calls", JSONType, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=True),
    sa.Column("completion_tokens", sa.Integer, nullable=True),
    sa.Column("total_tokens", sa.Integer, nullable=True),
    sa.Column("n_spans", sa.Integer, nullable=False),
    sa.Column("input_key", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_traces_start_time", "start_time"),
    sa.Index("ix_traces_session_id", "session_id"),
)

cohort_members = sa.Table(
    "cohort_members",
    metadata,
    sa.Column("cohort", sa.String, primary_key=True),
    sa.Column(
        "trace_id",
        sa.String(32),
        sa.ForeignKey("traces.trace_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("input_key", sa.String(64), nullable=True),
    sa.Column("trace_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    # Near-identical inputs enter a cohort once: the second insert is ignored.
    sa.UniqueConstraint("cohort", "input_key"),
    # Serves the rolling window and the cap: the oldest members of a cohort first.
    sa.Index("ix_cohort_members_window", "cohort", "trace_time"),
)

cohort_member_bands = sa.Table(
    "cohort_member_bands",
    metadata,
    sa.Column("cohort", sa.String, primary_key=True),
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("band", sa.Integer, primary_key=True),
    # A MinHash LSH band of the member's input (heldout.tracing._dedup): members that
    # share one with a new trace are the only ones compared with it.
    sa.Column("hash", sa.BigInteger, nullable=False),
    sa.ForeignKeyConstraint(
        ["cohort", "trace_id"],
        ["cohort_members.cohort", "cohort_members.trace_id"],
        ondelete="CASCADE",
    ),
    sa.Index("ix_cohort_member_bands_lookup", "cohort", "hash"),
)

CLASS_STATUSES = ("pending", "ok", "error", "skipped")

cohort_classes = sa.Table(
    "cohort_classes",
    metadata,
    sa.Column("cohort", sa.String, primary_key=True),
    sa.Column(
        "trace_id",
        sa.String(32),
        sa.ForeignKey("traces.trace_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # A hash of the classifier and the trace text it reads: a verdict holds while both
    # stay the same.
    sa.Column("basis", sa.String(32), nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("joins", sa.Boolean, nullable=True),
    sa.Column("judge", sa.String, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("error_kind", sa.String, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_in("status", CLASS_STATUSES), name="status"),
    sa.Index("ix_cohort_classes_status", "cohort", "status"),
)

spot_check_labels = sa.Table(
    "spot_check_labels",
    metadata,
    sa.Column("run_id", sa.String, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("sample_key", sa.String, primary_key=True),
    sa.Column("axis", sa.String, primary_key=True),
    sa.Column("labeler", sa.String, primary_key=True),
    sa.Column("label", sa.String, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
