"""Core schema: tenants, users, tokens, registry with history, telemetry, objectives, audit log.

Revision ID: core_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from derms.store.types import BigIntPK, UTCDateTime

revision = "core_0001"
down_revision = None
branch_labels = ("core",)
depends_on = None


def _telemetry_values() -> list[sa.Column]:
    return [
        sa.Column("p_w", sa.Float, nullable=True),
        sa.Column("q_var", sa.Float, nullable=True),
        sa.Column("v_v", sa.Float, nullable=True),
        sa.Column("f_hz", sa.Float, nullable=True),
        sa.Column("soc", sa.Float, nullable=True),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("available", sa.Boolean, nullable=False),
        sa.Column("quality", sa.SmallInteger, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("username", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(200), nullable=False),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("latitude", sa.Float, nullable=True),
        sa.Column("longitude", sa.Float, nullable=True),
        sa.Column("feeder_id", sa.String(64), nullable=True, index=True),
        sa.Column("bus", sa.String(64), nullable=True),
        sa.Column("phase", sa.String(3), nullable=False),
        sa.Column("meter_id", sa.String(64), nullable=True),
        sa.Column("import_limit_w", sa.Float, nullable=True),
        sa.Column("export_limit_w", sa.Float, nullable=True),
    )
    op.create_table(
        "ders",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("idx", sa.Integer, nullable=False, unique=True),
        sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), nullable=False, index=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("protocol", sa.String(32), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("capabilities", sa.JSON, nullable=False),
        sa.UniqueConstraint("protocol", "address", name="uq_ders_protocol_address"),
    )
    op.create_table(
        "registry_history",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
    )
    op.create_index("ix_registry_history_entity", "registry_history", ["entity", "entity_id"])
    op.create_table(
        "telemetry",
        sa.Column("der_idx", sa.Integer, nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        *_telemetry_values(),
    )
    op.create_index("ix_telemetry_der_ts", "telemetry", ["der_idx", "ts_ms"])
    # BRIN on PostgreSQL: samples arrive in time order, so a block-range index serves the
    # retention scans at a fraction of a B-tree's ingest cost.
    op.create_index("ix_telemetry_ts", "telemetry", ["ts_ms"], postgresql_using="brin")
    op.create_table(
        "telemetry_latest",
        sa.Column("der_idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        *_telemetry_values(),
    )
    op.create_table(
        "telemetry_rollup",
        sa.Column("der_idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("interval_s", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("bucket_ms", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("n", sa.Integer, nullable=False),
        *(
            sa.Column(name, sa.Float)
            for name in ("p_avg", "p_min", "p_max", "q_avg", "v_avg", "v_min", "v_max", "soc_avg")
        ),
    )
    op.create_table(
        "objectives",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("area", sa.JSON, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("target_w", sa.Float, nullable=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    _append_only("audit_log")
    _append_only("registry_history")


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on ``table`` in the database itself."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    else:
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )


def downgrade() -> None:
    bind = op.get_bind()
    for table in ("audit_log", "registry_history"):
        if bind.dialect.name == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    for table in (
        "audit_log",
        "objectives",
        "telemetry_rollup",
        "telemetry_latest",
        "telemetry",
        "registry_history",
        "ders",
        "sites",
        "customers",
        "api_tokens",
        "users",
        "tenants",
    ):
        op.drop_table(table)
