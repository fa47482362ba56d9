"""OpenADR 3.0.1 VTN objects (programs, events, reports, subscriptions, VENs, resources).

Revision ID: openadr_0002
Revises: openadr_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "openadr_0002"
down_revision = "openadr_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "openadr3_object",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("kind", "id", name="pk_openadr3_object"),
    )


def downgrade() -> None:
    op.drop_table("openadr3_object")
