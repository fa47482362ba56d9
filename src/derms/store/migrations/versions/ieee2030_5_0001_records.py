"""IEEE 2030.5 server records (end devices, programs, controls, curves, mirrors, subscriptions).

Revision ID: ieee2030_5_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "ieee2030_5_0001"
down_revision = None
branch_labels = ("ieee2030_5",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "ieee2030_5_record",
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("edev_id", sa.BigInteger, nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("kind", "id", name="pk_ieee2030_5_record"),
    )
    op.create_index("ix_ieee2030_5_record_tenant_id", "ieee2030_5_record", ["tenant_id"])
    op.create_index("ix_ieee2030_5_record_edev_id", "ieee2030_5_record", ["edev_id"])


def downgrade() -> None:
    op.drop_index("ix_ieee2030_5_record_edev_id", "ieee2030_5_record")
    op.drop_index("ix_ieee2030_5_record_tenant_id", "ieee2030_5_record")
    op.drop_table("ieee2030_5_record")
