"""Alembic environment: runs migrations on the engine handed over in ``config.attributes``."""

from __future__ import annotations

from alembic import context

import derms.store.schema  # noqa: F401  (registers the core tables on the metadata)
from derms.store.db import make_engine, metadata

engine = context.config.attributes.get("engine") or make_engine()

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
