"""Core tables: tenants, users and tokens, registry (customers, sites, DERs) with history,
telemetry (raw, latest, roll-ups), objectives and the append-only audit log."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

from derms.store.db import metadata
from derms.store.types import BigIntPK, UTCDateTime

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # utility | aggregator
    Column("created_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("username", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # viewer | operator | admin
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(100), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

customers = Table(
    "customers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("email", String(200), nullable=False, default=""),
)

sites = Table(
    "sites",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
    Column("feeder_id", String(64), nullable=True, index=True),
    Column("bus", String(64), nullable=True),
    Column("phase", String(3), nullable=False, default="ABC"),
    Column("meter_id", String(64), nullable=True),
    Column("import_limit_w", Float, nullable=True),
    Column("export_limit_w", Float, nullable=True),
)

ders = Table(
    "ders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("idx", Integer, nullable=False, unique=True),  # dense row number for columnar state
    Column("site_id", String(64), ForeignKey("sites.id"), nullable=False, index=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("address", String(200), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("capabilities", JSON, nullable=False),
    UniqueConstraint("protocol", "address", name="uq_ders_protocol_address"),
)

registry_history = Table(
    "registry_history",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("entity", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # create | update | delete
    Column("actor", String(64), nullable=False),
    Column("tenant_id", String(64), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Index("ix_registry_history_entity", "entity", "entity_id"),
)

_TELEMETRY_VALUES = (
    ("p_w", Float),
    ("q_var", Float),
    ("v_v", Float),
    ("f_hz", Float),
    ("soc", Float),
)


def _telemetry_columns() -> list[Column]:  # type: ignore[type-arg]
    return [
        *(Column(name, kind, nullable=True) for name, kind in _TELEMETRY_VALUES),
        Column("status", SmallInteger, nullable=False),
        Column("available", Boolean, nullable=False),
        Column("quality", SmallInteger, nullable=False),
    ]


telemetry = Table(
    "telemetry",
    metadata,
    Column("der_idx", Integer, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    *_telemetry_columns(),
    Index("ix_telemetry_der_ts", "der_idx", "ts_ms"),
    Index("ix_telemetry_ts", "ts_ms", postgresql_using="brin").ddl_if(dialect="postgresql"),
)
"""Raw samples; ``ts_ms`` is milliseconds since the Unix epoch (UTC)."""

telemetry_recent = Table(
    "telemetry_recent",
    metadata,
    Column("der_idx", Integer, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    *_telemetry_columns(),
)
"""Raw samples not yet moved into ``telemetry`` (SQLite ingest appends here; no index)."""

telemetry_latest = Table(
    "telemetry_latest",
    metadata,
    Column("der_idx", Integer, primary_key=True, autoincrement=False),
    Column("ts_ms", BigInteger, nullable=False),
    *_telemetry_columns(),
)

telemetry_rollup = Table(
    "telemetry_rollup",
    metadata,
    Column("der_idx", Integer, primary_key=True, autoincrement=False),
    Column("interval_s", Integer, primary_key=True, autoincrement=False),
    Column("bucket_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("n", Integer, nullable=False),
    Column("p_avg", Float),
    Column("p_min", Float),
    Column("p_max", Float),
    Column("q_avg", Float),
    Column("v_avg", Float),
    Column("v_min", Float),
    Column("v_max", Float),
    Column("soc_avg", Float),
)
"""Downsampled telemetry (per DER, per ``interval_s`` bucket), kept after raw data expires."""

objectives = Table(
    "objectives",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("area", JSON, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("target_w", Float, nullable=True),
    Column("params", JSON, nullable=False),
    Column("source", String(200), nullable=False),
    Column("tenant_id", String(64), nullable=True),
    Column("state", String(16), nullable=False),  # active | cancelled
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigIntPK, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("tenant_id", String(64), nullable=True),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
)
"""Append-only: triggers refuse UPDATE and DELETE; each row chains the previous row's hash."""
