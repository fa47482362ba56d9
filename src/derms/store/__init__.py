"""Persistence: SQLAlchemy 2 Core schema, Alembic migrations, repositories and the telemetry store.

SQLite in WAL mode is the embedded default; PostgreSQL is used when ``DERMS_DATABASE_URL``
names it. Hot paths (telemetry ingest) go through the DBAPI in bulk, never ORM objects.
"""

from derms.store.db import database_url, make_engine, metadata, upgrade

__all__ = ["database_url", "make_engine", "metadata", "upgrade"]
