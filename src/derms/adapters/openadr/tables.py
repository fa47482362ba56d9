"""Durable storage of the 2.0b VTN's state (one table of records keyed by kind and id).

Kinds: ``ven`` (registration, profile, registered reports and report requests), ``event``
(the ``oadrEvent`` XML as last sent), ``opt`` (opt history of one event and VEN), ``optsched``
(an ``oadrCreateOpt`` availability schedule). The VTN keeps its working set in memory and
writes every change through; on start it reloads from here. Created by the Alembic branch
``openadr`` (revision ``openadr_0001``).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, String, Table

from derms.store.db import metadata

records = Table(
    "openadr_record",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("id", String(300), primary_key=True),
    Column("data", JSON, nullable=False),
)
