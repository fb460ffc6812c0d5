"""The first schema: runs, samples, scores and the judge response cache.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from _schema: a revision is a frozen snapshot.
# op.f() marks each name as final, so the naming convention does not rename it again.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create the four tables and the aggregation index."""
    op.create_table(
        "runs",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'done', 'failed', 'interrupted')", name=op.f("ck_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_table(
        "samples",
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("sample_key", sa.String, nullable=False),
        sa.Column("sample_id", sa.String, nullable=False),
        sa.Column("cohort", sa.String, nullable=False),
        sa.Column("checkpoint", sa.String, nullable=True),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("context", sa.Text, nullable=True),
        sa.Column("reference", sa.Text, nullable=True),
        sa.Column("metadata", JSONType, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_samples_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "sample_key", name=op.f("pk_samples")),
    )
    op.create_table(
        "scores",
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("sample_key", sa.String, nullable=False),
        sa.Column("evaluator", sa.String, nullable=False),
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
        sa.CheckConstraint("status IN ('ok', 'error', 'skipped')", name=op.f("ck_scores_status")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_scores_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "sample_key", "evaluator", name=op.f("pk_scores")),
    )
    op.create_index(
        op.f("ix_scores_aggregate"), "scores", ["run_id", "evaluator", "cohort", "status"]
    )
    op.create_table(
        "judge_cache",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("reply", JSONType, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_judge_cache")),
    )


def downgrade() -> None:
    """Drop everything ``upgrade`` created."""
    op.drop_table("judge_cache")
    op.drop_index(op.f("ix_scores_aggregate"), table_name="scores")
    op.drop_table("scores")
    op.drop_table("samples")
    op.drop_table("runs")
