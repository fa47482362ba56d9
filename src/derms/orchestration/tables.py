"""Orchestration tables: dispatch plans with their recorded inputs, commands, command history."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, ForeignKey, Integer, LargeBinary, String, Table, Text

from derms.store.db import metadata
from derms.store.types import BigIntPK, UTCDateTime

plans = Table(
    "orchestration_plan",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("tenant_id", String(64), nullable=True, index=True),
    Column("objective_ids", JSON, nullable=False),
    Column("solver", String(64), nullable=False),
    Column("status", String(200), nullable=False),
    Column("cost", Float, nullable=True),
    Column("inputs_digest", String(64), nullable=False, index=True),
    # The recorded problem (derms.orchestration.replay): replaying it reproduces the plan.
    Column("inputs", LargeBinary, nullable=False),
    Column("setpoints", Integer, nullable=False),
)

commands = Table(
    "orchestration_command",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("plan_id", String(64), ForeignKey("orchestration_plan.id"), nullable=False, index=True),
    Column("der_id", String(64), nullable=False, index=True),
    Column("protocol", String(32), nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("control", JSON, nullable=False),
    Column("objective_id", String(64), nullable=True),
    Column("binding", String(200), nullable=False),
    Column("detail", String(200), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    # When an acknowledgement is due; past it the command is retried or failed.
    Column("deadline", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # Measured active power while active (delivery against telemetry).
    Column("delivered_w", Float, nullable=True),
)

command_events = Table(
    "orchestration_command_event",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("command_id", String(64), ForeignKey("orchestration_command.id"), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("detail", Text, nullable=False),
)
