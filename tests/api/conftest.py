"""A running runtime with tenants, users and tokens, and an HTTP client on the real ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine

from derms.api.app import create_app
from derms.api.auth import Role, create_user, issue_token
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.runtime import Runtime
from derms.settings import Settings
from derms.store import registry
from tests.conftest import T0


@dataclass
class Api:
    runtime: Runtime
    client: httpx.AsyncClient
    tokens: dict[str, str]

    def as_(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


USERS = {
    "admin": ("utility", Role.ADMIN),
    "operator": ("utility", Role.OPERATOR),
    "viewer": ("utility", Role.VIEWER),
    "a-op": ("agg-a", Role.OPERATOR),
    "a-admin": ("agg-a", Role.ADMIN),
    "b-op": ("agg-b", Role.OPERATOR),
}


def seed_users(engine: Engine) -> dict[str, str]:
    tokens = {}
    with engine.begin() as conn:
        registry.create_tenant(
            conn, tenant_id="utility", name="Utility", kind="utility", at=T0, actor="setup"
        )
        registry.create_tenant(
            conn, tenant_id="agg-a", name="Aggregator A", kind="aggregator", at=T0, actor="setup"
        )
        registry.create_tenant(
            conn, tenant_id="agg-b", name="Aggregator B", kind="aggregator", at=T0, actor="setup"
        )
        for name, (tenant, role) in USERS.items():
            user_id = create_user(conn, username=name, tenant_id=tenant, role=role, at=T0)
            tokens[name] = issue_token(conn, user_id=user_id, at=T0)
    return tokens


@pytest.fixture
async def api(db_engine: Engine) -> AsyncIterator[Api]:
    clock = ManualClock(T0)
    runtime = Runtime(
        Settings(telemetry_flush_s=0.05, stale_after_s=None), db_engine, MemoryBus(clock), clock
    )
    tokens = seed_users(db_engine)
    await runtime.start()
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://derms.test") as client:
        yield Api(runtime, client, tokens)
    await runtime.stop()
