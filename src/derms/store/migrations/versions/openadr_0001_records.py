"""OpenADR 2.0b VTN records (VENs, events, opt histories, opt schedules).

Revision ID: openadr_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "openadr_0001"
down_revision = None
branch_labels = ("openadr",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "openadr_record",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("id", sa.String(300), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("kind", "id", name="pk_openadr_record"),
    )


def downgrade() -> None:
    op.drop_table("openadr_record")
