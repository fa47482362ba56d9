"""Telemetry: an append-only ``telemetry_recent`` table in front of the raw table.

SQLite ingest appends each batch to ``telemetry_recent`` (no index, so a commit writes only
the pages at the table's end) and moves it into ``telemetry`` in (DER, time) order every
few hundred thousand rows. The raw table's time index is dropped on SQLite, where only the
(DER, time) index serves queries and retention; PostgreSQL keeps its BRIN index.

Revision ID: core_0002
Revises: core_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None

_COLUMNS = "der_idx, ts_ms, p_w, q_var, v_v, f_hz, soc, status, available, quality"


def upgrade() -> None:
    op.create_table(
        "telemetry_recent",
        sa.Column("der_idx", sa.Integer, nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("p_w", sa.Float, nullable=True),
        sa.Column("q_var", sa.Float, nullable=True),
        sa.Column("v_v", sa.Float, nullable=True),
        sa.Column("f_hz", sa.Float, nullable=True),
        sa.Column("soc", sa.Float, nullable=True),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("available", sa.Boolean, nullable=False),
        sa.Column("quality", sa.SmallInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_telemetry_ts", table_name="telemetry")


def downgrade() -> None:
    op.execute(f"INSERT INTO telemetry ({_COLUMNS}) SELECT {_COLUMNS} FROM telemetry_recent")
    op.drop_table("telemetry_recent")
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_telemetry_ts", "telemetry", ["ts_ms"])
