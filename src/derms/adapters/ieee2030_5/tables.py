"""Durable storage of the 2030.5 server's records (one table, scoped columns).

Each record is one row keyed by ``(kind, id)`` with its tenant and EndDevice as columns (so
scoped queries and clean-up need no JSON) and the record itself as JSON. The server keeps
its working set in memory (``repository.py``) and writes every change through; on start it
reloads from here. Created by the Alembic branch ``ieee2030_5`` (revision ``ieee2030_5_0001``).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, String, Table

from derms.store.db import metadata

records = Table(
    "ieee2030_5_record",
    metadata,
    Column("kind", String(24), primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("tenant_id", String(64), nullable=True, index=True),
    Column("edev_id", BigInteger, nullable=True, index=True),
    Column("data", JSON, nullable=False),
)
