"""Production cohorts: near-duplicate bands of members, and the classifier's verdicts.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the band and classification tables."""
    op.create_table(
        "cohort_member_bands",
        sa.Column("cohort", sa.String, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("band", sa.Integer, nullable=False),
        sa.Column("hash", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort", "trace_id"],
            ["cohort_members.cohort", "cohort_members.trace_id"],
            name=op.f("fk_cohort_member_bands_cohort_cohort_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cohort", "trace_id", "band", name=op.f("pk_cohort_member_bands")),
    )
    op.create_index(
        op.f("ix_cohort_member_bands_lookup"), "cohort_member_bands", ["cohort", "hash"]
    )
    op.create_table(
        "cohort_classes",
        sa.Column("cohort", sa.String, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
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
        sa.CheckConstraint(
            "status IN ('pending', 'ok', 'error', 'skipped')", name=op.f("ck_cohort_classes_status")
        ),
        sa.ForeignKeyConstraint(
            ["trace_id"],
            ["traces.trace_id"],
            name=op.f("fk_cohort_classes_trace_id_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cohort", "trace_id", name=op.f("pk_cohort_classes")),
    )
    op.create_index(op.f("ix_cohort_classes_status"), "cohort_classes", ["cohort", "status"])


def downgrade() -> None:
    """Drop everything ``upgrade`` created."""
    op.drop_index(op.f("ix_cohort_classes_status"), table_name="cohort_classes")
    op.drop_table("cohort_classes")
    op.drop_index(op.f("ix_cohort_member_bands_lookup"), table_name="cohort_member_bands")
    op.drop_table("cohort_member_bands")
