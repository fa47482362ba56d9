"""Durable record of the platform commands in flight as 3.0.1 events: which event carries
which command, for which DER and VEN, and the last state reported. Written in the same
transaction as the event's own row (``openadr3_object``), so an event never exists without
its command or the other way round; a command's row goes when it reaches a final state.
Created by the Alembic branch ``openadr`` (revision ``openadr_0003``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Column, Connection, Engine, String, Table, delete, insert, select, update

from derms.core.dispatch import CommandState
from derms.store.db import metadata
from derms.store.types import UTCDateTime

commands = Table(
    "openadr3_command",
    metadata,
    Column("command_id", String(128), primary_key=True),
    Column("der_id", String(128), nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("ven_name", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class CommandRow:
    command_id: str
    der_id: str
    protocol: str
    event_id: str
    ven_name: str
    state: CommandState
    start: datetime
    end: datetime


class CommandStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def insert(conn: Connection, row: CommandRow) -> None:
        """Record a command (replacing an earlier record of the same id) within ``conn``'s transaction."""
        CommandStore.forget(conn, row.command_id)
        conn.execute(insert(commands).values(**{**asdict(row), "state": row.state.value}))

    @staticmethod
    def forget(conn: Connection, command_id: str) -> None:
        conn.execute(delete(commands).where(commands.c.command_id == command_id))

    def set_state(self, command_id: str, state: CommandState) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(commands).where(commands.c.command_id == command_id).values(state=state.value)
            )

    def drop(self, command_id: str) -> None:
        with self.engine.begin() as conn:
            self.forget(conn, command_id)

    def load(self) -> list[CommandRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(commands)).mappings().all()
        return [CommandRow(**{**r, "state": CommandState(r["state"])}) for r in rows]
