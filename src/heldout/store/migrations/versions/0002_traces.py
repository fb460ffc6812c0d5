"""Production traces: spans, traces, cohort membership, and spot-check labels.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create the trace tables and the spot-check labels."""
    op.create_table(
        "trace_spans",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
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
        sa.PrimaryKeyConstraint("trace_id", "span_id", name=op.f("pk_trace_spans")),
    )
    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(32), nullable=False),
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
        sa.PrimaryKeyConstraint("trace_id", name=op.f("pk_traces")),
    )
    op.create_index(op.f("ix_traces_start_time"), "traces", ["start_time"])
    op.create_index(op.f("ix_traces_session_id"), "traces", ["session_id"])
    op.create_table(
        "cohort_members",
        sa.Column("cohort", sa.String, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("input_key", sa.String(64), nullable=True),
        sa.Column("trace_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trace_id"],
            ["traces.trace_id"],
            name=op.f("fk_cohort_members_trace_id_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cohort", "trace_id", name=op.f("pk_cohort_members")),
        sa.UniqueConstraint("cohort", "input_key", name=op.f("uq_cohort_members_cohort_input_key")),
    )
    op.create_index(op.f("ix_cohort_members_window"), "cohort_members", ["cohort", "trace_time"])
    op.create_table(
        "spot_check_labels",
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("sample_key", sa.String, nullable=False),
        sa.Column("axis", sa.String, nullable=False),
        sa.Column("labeler", sa.String, nullable=False),
        sa.Column("label", sa.String, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_spot_check_labels_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "sample_key", "axis", "labeler", name=op.f("pk_spot_check_labels")
        ),
    )


def downgrade() -> None:
    """Drop everything ``upgrade`` created."""
    op.drop_table("spot_check_labels")
    op.drop_index(op.f("ix_cohort_members_window"), table_name="cohort_members")
    op.drop_table("cohort_members")
    op.drop_index(op.f("ix_traces_session_id"), table_name="traces")
    op.drop_index(op.f("ix_traces_start_time"), table_name="traces")
    op.drop_table("traces")
    op.drop_table("trace_spans")
