"""Orchestration: dispatch plans with recorded inputs, commands and their state history.

Revision ID: orchestration_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from derms.store.types import BigIntPK, UTCDateTime

revision = "orchestration_0001"
down_revision = None
branch_labels = ("orchestration",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "orchestration_plan",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("objective_ids", sa.JSON, nullable=False),
        sa.Column("solver", sa.String(64), nullable=False),
        sa.Column("status", sa.String(200), nullable=False),
        sa.Column("cost", sa.Float, nullable=True),
        sa.Column("inputs_digest", sa.String(64), nullable=False),
        sa.Column("inputs", sa.LargeBinary, nullable=False),
        sa.Column("setpoints", sa.Integer, nullable=False),
    )
    op.create_index("ix_orchestration_plan_tenant_id", "orchestration_plan", ["tenant_id"])
    op.create_index("ix_orchestration_plan_inputs_digest", "orchestration_plan", ["inputs_digest"])
    op.create_table(
        "orchestration_command",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("plan_id", sa.String(64), sa.ForeignKey("orchestration_plan.id"), nullable=False),
        sa.Column("der_id", sa.String(64), nullable=False),
        sa.Column("protocol", sa.String(32), nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("control", sa.JSON, nullable=False),
        sa.Column("objective_id", sa.String(64), nullable=True),
        sa.Column("binding", sa.String(200), nullable=False),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("deadline", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("delivered_w", sa.Float, nullable=True),
    )
    for col in ("plan_id", "der_id", "state"):
        op.create_index(f"ix_orchestration_command_{col}", "orchestration_command", [col])
    op.create_table(
        "orchestration_command_event",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("command_id", sa.String(64), sa.ForeignKey("orchestration_command.id"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("ts", UTCDateTime, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_orchestration_command_event_command_id", "orchestration_command_event", ["command_id"]
    )


def downgrade() -> None:
    op.drop_table("orchestration_command_event")
    op.drop_table("orchestration_command")
    op.drop_table("orchestration_plan")
