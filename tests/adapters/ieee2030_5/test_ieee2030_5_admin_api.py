"""Operator API: out-of-band registration, programs, controls, defaults and curves, per tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from derms.adapters.base import AdapterContext
from derms.adapters.ieee2030_5 import Ieee2030_5Adapter, Ieee2030_5Settings, create_adapter
from derms.api.app import create_app
from derms.api.auth import Role, create_user, issue_token
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.runtime import Runtime
from derms.settings import Settings
from derms.store import registry

T0 = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
LFDI = "3E4F45AB31EDFE5B67E343E5E4562E31984E23E5"


@dataclass
class Api:
    client: httpx.AsyncClient
    adapter: Ieee2030_5Adapter
    tokens: dict[str, str]

    def as_(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


USERS = {
    "a-op": ("agg-a", Role.OPERATOR),
    "b-op": ("agg-b", Role.OPERATOR),
    "viewer": ("utility", Role.VIEWER),
    "admin": ("utility", Role.ADMIN),
}


def seed_users(engine: Engine) -> dict[str, str]:
    tokens = {}
    with engine.begin() as conn:
        for tenant, kind in (("utility", "utility"), ("agg-a", "aggregator"), ("agg-b", "aggregator")):
            registry.create_tenant(conn, tenant_id=tenant, name=tenant, kind=kind, at=T0, actor="setup")
        for name, (tenant, role) in USERS.items():
            user_id = create_user(conn, username=name, tenant_id=tenant, role=role, at=T0)
            tokens[name] = issue_token(conn, user_id=user_id, at=T0)
    return tokens


@pytest.fixture
async def api(db_engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    clock = ManualClock(T0)
    bus = MemoryBus(clock)
    runtime = Runtime(Settings(telemetry_flush_s=0.05, stale_after_s=None), db_engine, bus, clock)
    adapter = create_adapter(
        AdapterContext(bus=bus, clock=clock, protocol="ieee2030_5"), Ieee2030_5Settings(port=0)
    )
    runtime.adapters["ieee2030_5"] = adapter
    tokens = seed_users(db_engine)
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://derms.test") as client:
        yield Api(client, adapter, tokens)


async def test_operator_creates_program_control_default_and_curve(api: Api) -> None:
    c = api.client
    edev = await c.post(
        "/api/v1/ieee2030_5/end-devices", json={"lfdi": LFDI, "der_id": "d1"}, headers=api.as_("a-op")
    )
    assert edev.status_code == 201 and edev.json()["sfdi"] == 167261211391
    program = await c.post(
        "/api/v1/ieee2030_5/programs",
        json={"description": "DOE", "primacy": 1, "edev_ids": [edev.json()["id"]]},
        headers=api.as_("a-op"),
    )
    assert program.status_code == 201
    pid = program.json()["id"]
    control = await c.post(
        f"/api/v1/ieee2030_5/programs/{pid}/controls",
        json={
            "start": int(T0.timestamp()),
            "duration_s": 600,
            "control": {"opModExpLimW": {"value": 15, "multiplier": 2}},
        },
        headers=api.as_("a-op"),
    )
    assert control.status_code == 201
    bad = await c.post(
        f"/api/v1/ieee2030_5/programs/{pid}/controls",
        json={"start": 0, "duration_s": 600, "control": {"opModBogus": 1}},
        headers=api.as_("a-op"),
    )
    assert bad.status_code == 422  # the platform maps ValidationFailed to 422
    default = await c.put(
        f"/api/v1/ieee2030_5/programs/{pid}/default",
        json={"control": {"opModExpLimW": {"value": 5, "multiplier": 3}}, "set_grad_w": 1000},
        headers=api.as_("a-op"),
    )
    assert default.status_code == 200 and default.json()["has_default"]
    curve = await c.post(
        f"/api/v1/ieee2030_5/programs/{pid}/curves",
        json={"curve_type": 11, "points": [[92, 30], [108, -30]], "y_ref_type": 2},
        headers=api.as_("a-op"),
    )
    assert curve.status_code == 201
    cancel = await c.post(
        f"/api/v1/ieee2030_5/controls/{control.json()['id']}/cancel", headers=api.as_("a-op")
    )
    assert cancel.status_code == 200 and cancel.json()["cancelled_time"] == int(T0.timestamp())
    # another tenant sees nothing and may not change it; a viewer may not write
    assert (await c.get("/api/v1/ieee2030_5/programs", headers=api.as_("b-op"))).json() == []
    other = await c.post(
        f"/api/v1/ieee2030_5/controls/{control.json()['id']}/cancel", headers=api.as_("b-op")
    )
    assert other.status_code == 404
    viewer = await c.post(
        "/api/v1/ieee2030_5/programs", json={"description": "x", "primacy": 1}, headers=api.as_("viewer")
    )
    assert viewer.status_code == 403
    assert len((await c.get("/api/v1/ieee2030_5/programs", headers=api.as_("admin"))).json()) == 1
