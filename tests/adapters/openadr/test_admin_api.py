"""Operator API: the utility creates and cancels 2.0b events; others read or are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine

from derms.adapters.base import AdapterContext
from derms.adapters.openadr.adapter import OpenAdrVtnAdapter, create_adapter
from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import Registration
from derms.adapters.openadr.settings import OpenAdrSettings
from derms.api.app import create_app
from derms.api.auth import Role, create_user, issue_token
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.runtime import Runtime
from derms.settings import Settings
from derms.store import registry

T0 = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
USERS = {
    "util-op": ("utility", Role.OPERATOR),
    "agg-op": ("agg-a", Role.OPERATOR),
    "viewer": ("utility", Role.VIEWER),
}


@dataclass
class Api:
    client: httpx.AsyncClient
    adapter: OpenAdrVtnAdapter
    tokens: dict[str, str]

    def as_(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


@pytest.fixture
async def api(db_engine: Engine) -> AsyncIterator[Api]:
    clock = ManualClock(T0)
    bus = MemoryBus(clock)
    runtime = Runtime(Settings(telemetry_flush_s=0.05, stale_after_s=None), db_engine, bus, clock)
    adapter = create_adapter(
        AdapterContext(bus=bus, clock=clock, protocol="openadr"), OpenAdrSettings(port=0)
    )
    runtime.adapters["openadr"] = adapter
    tokens = {}
    with db_engine.begin() as conn:
        for tenant, kind in (("utility", "utility"), ("agg-a", "aggregator")):
            registry.create_tenant(conn, tenant_id=tenant, name=tenant, kind=kind, at=T0, actor="setup")
        for name, (tenant, role) in USERS.items():
            tokens[name] = issue_token(
                conn, user_id=create_user(conn, username=name, tenant_id=tenant, role=role, at=T0), at=T0
            )
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://derms.test") as client:
        yield Api(client, adapter, tokens)


EVENT = {
    "start": "2026-07-15T17:00:00Z",
    "priority": 1,
    "target": {"ven_ids": ["ven-a"]},
    "signals": [
        {
            "signal_name": "LOAD_DISPATCH",
            "signal_type": "setpoint",
            "intervals": [{"duration_s": 1800, "value": 120.0}, {"duration_s": 1800, "value": 90.0}],
            "item": {"element": "power:powerReal", "description": "RealPower", "units": "W", "scale": "k"},
        },
    ],
}


async def test_utility_operator_creates_and_cancels_events(api: Api) -> None:
    r = await api.client.post("/api/v1/openadr/events", json=EVENT, headers=api.as_("util-op"))
    assert r.status_code == 201, r.text
    event = r.json()
    assert event["duration_s"] == 3600 and event["signals"][0]["signal_name"] == "LOAD_DISPATCH"
    # a VEN registered with the VTN sees it on its next poll
    reg = Registration("ven-a", "2.0b", "simpleHttp", False, False, True)
    reply = codec.parse_payload(
        await api.adapter.vtn.handle(
            "EiRegisterParty", codec.serialize(codec.envelope(codec.create_party_registration("r", reg)))
        )
    )
    ven_id = reply.element.findtext("ei:venID", namespaces=codec.NS)
    poll = codec.parse_payload(
        await api.adapter.vtn.handle("OadrPoll", codec.serialize(codec.envelope(codec.poll(ven_id))))
    )
    assert poll.name == "oadrDistributeEvent"
    r = await api.client.post(
        f"/api/v1/openadr/events/{event['event_id']}/cancel", headers=api.as_("util-op")
    )
    assert r.json()["status"] == "cancelled" and r.json()["modification_number"] == 1
    vens = (await api.client.get("/api/v1/openadr/vens", headers=api.as_("viewer"))).json()
    assert [v["ven_name"] for v in vens] == ["ven-a"]


async def test_refusals(api: Api) -> None:
    assert (
        await api.client.post("/api/v1/openadr/events", json=EVENT, headers=api.as_("agg-op"))
    ).status_code == 403
    assert (
        await api.client.post("/api/v1/openadr/events", json=EVENT, headers=api.as_("viewer"))
    ).status_code == 403
    bad = {**EVENT, "signals": [{**EVENT["signals"][0], "signal_type": "price"}]}
    r = await api.client.post("/api/v1/openadr/events", json=bad, headers=api.as_("util-op"))
    assert r.status_code in (400, 422) and "not allowed" in r.text
    assert api.adapter.vtn.events == {}
    assert (await api.client.get("/api/v1/openadr/events/nope", headers=api.as_("viewer"))).status_code == 404
