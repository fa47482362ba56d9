"""An operator command for a DER behind a 3.0.1 VEN becomes a 3.0.1 event on derms' 3.0.1
VTN: the simulated VEN applies it, subscribers get the webhook, the VEN's report
acknowledges the command and lands in the fleet state; commands outside limits change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from derms.adapters.base import AdapterContext
from derms.adapters.openadr.adapter import create_adapter
from derms.adapters.openadr.oadr20b.server import HttpServer
from derms.adapters.openadr.settings import Oadr3Client, OpenAdrSettings
from derms.api.app import create_app
from derms.api.auth import Role, create_user, issue_token
from derms.bridge.openadr import OpenAdrTranslator
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.controls import LoadShed
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Reason, Setpoint
from derms.core.errors import NotFound
from derms.core.events import COMMAND_STATE
from derms.core.site import Customer, Site
from derms.runtime import Runtime
from derms.settings import Settings
from derms.sim.protocols.openadr.load import SimulatedCiLoad
from derms.sim.protocols.openadr.ven3 import CiLoadVen3
from derms.store import registry
from derms.store.scope import TenantScope

NOON = datetime(2026, 7, 15, 13, 0, tzinfo=UTC)


async def until(check: Callable[[], bool], limit_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not check():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def seed(engine: Engine) -> str:
    scope = TenantScope.utility()
    with engine.begin() as conn:
        registry.create_tenant(conn, tenant_id="utility", name="U", kind="utility", at=NOON, actor="t")
        registry.create_customer(conn, Customer("c", "utility", "C&I"), scope=scope, at=NOON, actor="t")
        registry.create_site(conn, Site("s", "c", "utility"), scope=scope, at=NOON, actor="t")
        ders = [
            Der(
                f"{ven}-load",
                "s",
                DerKind.CI_LOAD,
                Capabilities(w_max_consume=2e5),
                "openadr",
                f"{ven}/load-1",
                "utility",
            )
            for ven in ("ci-3", "ci-4")
        ]
        registry.create_ders(conn, ders, scope=scope, at=NOON, actor="t")
        user = create_user(conn, username="op", tenant_id="utility", role=Role.OPERATOR, at=NOON)
        return issue_token(conn, user_id=user, at=NOON)


async def test_operator_command_reaches_a_301_ven(sqlite_engine: Engine) -> None:
    clock = ManualClock(NOON)
    bus = MemoryBus(clock)
    runtime = Runtime(Settings(telemetry_flush_s=0.05, stale_after_s=None), sqlite_engine, bus, clock)
    token = seed(sqlite_engine)
    runtime.reload_fleet()
    clients = [Oadr3Client(client_id=v, client_secret="s", role="VEN", ven_name=v) for v in ("ci-3", "ci-4")]
    adapter = runtime.enable(
        "openadr",
        OpenAdrSettings(port=0, oadr3_enabled=True, oadr3_port=0, oadr3_clients=clients, status_tick_s=0.02),
    )
    states: list[tuple[str, str]] = []

    async def on_state(msg) -> None:  # type: ignore[no-untyped-def]
        states.append((msg.data["state"], msg.data["detail"]))

    received: list[dict] = []

    async def webhook(request: Request) -> Response:
        assert request.headers["authorization"] == "Bearer hook-secret"
        received.append(await request.json())
        return Response(status_code=200)

    receiver = HttpServer(Starlette(routes=[Route("/hook", webhook, methods=["POST"])]))
    await receiver.start()
    await runtime.start()
    await bus.subscribe(COMMAND_STATE, on_state)
    vens = [CiLoadVen3(adapter.url3, v, "s", v, clock, SimulatedCiLoad(seed=4)) for v in ("ci-3", "ci-4")]
    ven, other = vens
    try:
        for v in vens:
            await v.connect()
        program_id = adapter.dispatch_program_id()
        sub = {
            "clientName": "ci-3",
            "programID": program_id,
            "objectOperations": [
                {
                    "objects": ["EVENT"],
                    "operations": ["CREATE"],
                    "callbackUrl": f"{receiver.url}/hook",
                    "bearerToken": "hook-secret",
                }
            ],
        }
        r = await ven.http.post(f"{adapter.url3}/subscriptions", json=sub, headers=ven.headers)
        assert r.status_code == 201, r.text
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://derms.test") as api:
            auth = {"Authorization": f"Bearer {token}"}
            # outside the device's limits, or no 3.0.1 payload type: refused, nothing sent
            for control in ({"kind": "load_limit", "w": 250_000.0}, {"kind": "load_up", "level": 1}):
                r = await api.post("/api/v1/ders/ci-3-load/commands", json={"control": control}, headers=auth)
                assert r.status_code == 422, r.text
            assert [o for o in adapter.vtn3.objects["EVENT"].values()] == []
            r = await api.post(
                "/api/v1/ders/ci-3-load/commands",
                json={
                    "control": {"kind": "load_limit", "w": 50_000.4},
                    "start": NOON.isoformat(),
                    "duration_s": 3600,
                },
                headers=auth,
            )
        assert r.status_code == 202, r.text
        command = r.json()
        assert command["protocol"] == "openadr"
        assert command["losses"] == [
            {"field": "IMPORT_CAPACITY_LIMIT", "requested": 50.0004, "delivered": 50.0, "unit": "kW"}
        ]
        await ven.poll()
        await other.poll()
        assert other.events == []  # ci-4 also has a resource load-1, but the event names ci-3
        [event] = ven.events
        assert event["programID"] == program_id and event["eventName"] == command["command_id"]
        assert event["targets"] == [
            {"type": "VEN_NAME", "values": ["ci-3"]},
            {"type": "RESOURCE_NAME", "values": ["load-1"]},
        ]
        assert event["intervals"][0]["payloads"] == [{"type": "IMPORT_CAPACITY_LIMIT", "values": [50.0]}]
        assert event["payloadDescriptors"][0]["units"] == "KW"
        await until(lambda: len(received) == 1)
        assert received[0]["operation"] == "POST" and received[0]["object"]["id"] == event["id"]
        # the VEN applies the cap and reports; the report acknowledges and becomes telemetry
        clock.advance(60)
        p = ven.step(60.0)
        assert -50_000.0 - 1e-6 <= p < 0
        assert await ven.report() == 1
        await until(lambda: [s for s, _ in states] == ["sent", "acknowledged", "active"])
        row = runtime.fleet.index["ci-3-load"]
        await until(lambda: runtime.fleet.p_w[row] == p)
        clock.advance(3600)
        await until(lambda: states[-1][0] == "completed")
    finally:
        for v in vens:
            await v.close()
        await runtime.stop()
        await receiver.stop()


async def test_cancel_deletes_the_event_and_the_program_survives_restart(sqlite_engine: Engine) -> None:
    clock = ManualClock(NOON)
    bus = MemoryBus(clock)
    await bus.start()
    states: list[str] = []

    async def on_state(msg) -> None:  # type: ignore[no-untyped-def]
        states.append(msg.data["state"])

    await bus.subscribe(COMMAND_STATE, on_state)
    settings = OpenAdrSettings(
        port=0,
        oadr3_enabled=True,
        oadr3_port=0,
        oadr3_clients=[Oadr3Client(client_id="v", client_secret="s", role="VEN", ven_name="ci-3")],
    )
    der = Der("d", "s", DerKind.CI_LOAD, Capabilities(w_max_consume=2e5), "openadr", "ci-3/load-1", "utility")
    adapter = create_adapter(AdapterContext(bus, clock, "openadr"), settings, sqlite_engine)
    await adapter.register_device(der)
    translator = OpenAdrTranslator.for_adapter(settings, adapter)
    setpoint = Setpoint(
        "d", LoadShed(level=1), NOON, NOON + timedelta(hours=1), Reason(None, "operator", "t")
    )
    command = translator.translate(der, setpoint, "cmd-1")
    await adapter.send(command)
    assert adapter.vtn3 is not None and len(adapter.vtn3.objects["EVENT"]) == 1
    await adapter.cancel("cmd-1")
    await bus.drain()
    assert adapter.vtn3.objects["EVENT"] == {} and states == ["sent", "cancelled"]
    with pytest.raises(NotFound):
        await adapter.cancel("cmd-1")
    program_id = adapter.dispatch_program_id()
    again = create_adapter(AdapterContext(bus, clock, "openadr"), settings, sqlite_engine)
    assert again.dispatch_program_id() == program_id and again.vtn3 is not None
    assert again.vtn3.objects["EVENT"] == {}
    await bus.close()
