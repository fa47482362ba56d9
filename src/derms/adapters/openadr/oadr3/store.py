"""Durable storage of the 3.0.1 VTN's objects (programs, events, reports, subscriptions, VENs,
resources): one row per object, its wire form (``components/schemas`` of ``openadr3.yaml``
3.0.1) as JSON, the OAuth2 client that created it and its creation order. The VTN keeps its
working set in memory, writes every change through (one transaction each) and reloads from
here on start. Created by the Alembic branch ``openadr`` (revision ``openadr_0002``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Engine,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)

from derms.store.db import metadata

objects = Table(
    "openadr3_object",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("owner", String(128), nullable=False),
    Column("data", JSON, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    id: str
    owner: str
    data: dict[str, Any]


class Vtn3Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.connect() as conn:
            self._seq = int(conn.execute(select(func.coalesce(func.max(objects.c.seq), 0))).scalar_one())

    def put(
        self,
        kind: str,
        object_id: str,
        owner: str,
        data: dict[str, Any],
        also: Callable[[Connection], None] | None = None,
    ) -> None:
        """Insert or replace one object; a replaced object keeps its place in the creation order.
        ``also`` writes further rows in the same transaction."""
        match = (objects.c.kind == kind) & (objects.c.id == object_id)
        with self.engine.begin() as conn:
            if not conn.execute(update(objects).where(match).values(owner=owner, data=data)).rowcount:
                self._seq += 1
                conn.execute(
                    insert(objects).values(kind=kind, id=object_id, seq=self._seq, owner=owner, data=data)
                )
            if also is not None:
                also(conn)

    def drop(self, kind: str, object_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(objects).where((objects.c.kind == kind) & (objects.c.id == object_id)))

    def load(self) -> list[Row]:
        """Every stored object in creation order."""
        query = select(objects.c.kind, objects.c.id, objects.c.owner, objects.c.data).order_by(objects.c.seq)
        with self.engine.connect() as conn:
            return [Row(kind, object_id, owner, data) for kind, object_id, owner, data in conn.execute(query)]
