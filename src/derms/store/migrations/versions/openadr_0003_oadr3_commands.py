"""OpenADR 3.0.1 platform commands in flight (command → event, DER, VEN, last state).

Revision ID: openadr_0003
Revises: openadr_0002
"""

import sqlalchemy as sa
from alembic import op

from derms.store.types import UTCDateTime

revision = "openadr_0003"
down_revision = "openadr_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "openadr3_command",
        sa.Column("command_id", sa.String(128), nullable=False),
        sa.Column("der_id", sa.String(128), nullable=False),
        sa.Column("protocol", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("ven_name", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("command_id", name="pk_openadr3_command"),
    )


def downgrade() -> None:
    op.drop_table("openadr3_command")
