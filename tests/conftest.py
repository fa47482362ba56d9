"""Shared fixtures: migrated databases (SQLite, and PostgreSQL when reachable), clocks, buses."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine

from derms.core.clock import ManualClock
from derms.store.db import make_engine, upgrade

POSTGRES_URL = os.environ.get("DERMS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("DERMS_TEST_NATS_URL", "nats://127.0.0.1:4222")
T0 = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


def _postgres_problem() -> str | None:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc.__class__.__name__}); set DERMS_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    return _postgres_problem()


def _postgres_engine(postgres_problem: str | None) -> Iterator[Engine]:
    if postgres_problem:
        pytest.skip(postgres_problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    engine = make_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest, tmp_path, postgres_problem: str | None) -> Iterator[Engine]:
    """A migrated database: SQLite (WAL) in a temporary file, then the machine's PostgreSQL
    in a schema of its own (skipped with the reason when PostgreSQL is unreachable)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'derms.sqlite'}")
        upgrade(engine)
        yield engine
        engine.dispose()
    else:
        for engine in _postgres_engine(postgres_problem):
            upgrade(engine)
            yield engine


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'derms.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)
