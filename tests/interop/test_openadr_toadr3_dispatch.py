"""toadr3 (3.0.1, not ours) as the VEN of a DER: an operator command through
``Runtime.send_control`` reaches it as a 3.0.1 event, with the webhook, and its report
acknowledges the command and becomes the DER's telemetry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from toadr3.models import Interval, ObjectOperation, Report, ReportData, Subscription, ValuesMap

from derms.adapters.openadr.oadr20b.server import HttpServer
from derms.adapters.openadr.settings import Oadr3Client, OpenAdrSettings
from derms.bus import MemoryBus
from derms.core.clock import SystemClock
from derms.core.controls import LoadShed
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Reason
from derms.core.events import COMMAND_STATE
from derms.core.site import Customer, Site
from derms.runtime import Runtime
from derms.settings import Settings
from derms.store import registry
from derms.store.scope import TenantScope
from tests.interop.test_openadr_toadr3 import toadr, token

pytestmark = pytest.mark.interop

DER = Der("ven-a-load", "s", DerKind.CI_LOAD, Capabilities(w_max_consume=2e5), "openadr", "ven-a/load-1", "u")


async def wait_for(predicate, limit_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def test_operator_command_reaches_toadr3(sqlite_engine: Engine) -> None:
    clock = SystemClock()
    bus = MemoryBus(clock)
    scope = TenantScope.utility()
    now = clock.now()
    with sqlite_engine.begin() as conn:
        registry.create_tenant(conn, tenant_id="u", name="U", kind="utility", at=now, actor="t")
        registry.create_customer(conn, Customer("c", "u", "C&I"), scope=scope, at=now, actor="t")
        registry.create_site(conn, Site("s", "c", "u"), scope=scope, at=now, actor="t")
        registry.create_ders(conn, [DER], scope=scope, at=now, actor="t")
    runtime = Runtime(Settings(telemetry_flush_s=0.05, stale_after_s=None), sqlite_engine, bus, clock)
    runtime.reload_fleet()
    client = Oadr3Client(client_id="ven-a-client", client_secret="a-secret", role="VEN", ven_name="ven-a")
    adapter = runtime.enable(
        "openadr",
        OpenAdrSettings(port=0, oadr3_enabled=True, oadr3_port=0, oadr3_clients=[client], status_tick_s=0.02),
    )
    states: list[str] = []

    async def on_state(msg) -> None:  # type: ignore[no-untyped-def]
        states.append(msg.data["state"])

    received: list[dict] = []

    async def hook(request: Request) -> Response:
        received.append(await request.json())
        return Response(status_code=200)

    receiver = HttpServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
    await receiver.start()
    await runtime.start()
    await bus.subscribe(COMMAND_STATE, on_state)
    base = adapter.url3
    try:
        async with httpx.AsyncClient() as http:
            a = await token(http, base, "ven-a-client", "a-secret")
            ven = (await http.post(f"{base}/vens", json={"venName": "ven-a"}, headers=a)).json()
            r = await http.post(
                f"{base}/vens/{ven['id']}/resources", json={"resourceName": "load-1"}, headers=a
            )
            assert r.status_code == 201
        async with toadr(base, "ven-a-client", "a-secret") as ven_client:
            program_id = adapter.dispatch_program_id()
            await ven_client.post_subscription(
                Subscription(
                    client_name="ven-a",
                    programID=program_id,
                    object_operations=[
                        ObjectOperation(
                            objects=["EVENT"], operations=["POST"], callback_url=f"{receiver.url}/hook"
                        )
                    ],
                )
            )
            command = await runtime.send_control(
                DER, LoadShed(level=2), duration=timedelta(hours=1), reason=Reason(None, "operator", "test")
            )
            await wait_for(lambda: len(received) == 1)
            assert received[0]["object"]["eventName"] == command.command_id
            [event] = await ven_client.get_events(program_id=program_id)
            assert event.priority == 1
            assert [(t.type, t.values) for t in event.targets] == [
                ("VEN_NAME", ["ven-a"]),
                ("RESOURCE_NAME", ["load-1"]),
            ]
            assert [(p.type, p.values) for p in event.intervals[0].payloads] == [("SIMPLE", [2])]
            await ven_client.post_report(
                Report(
                    programID=program_id,
                    eventID=event.id,
                    client_name="ven-a",
                    resources=[
                        ReportData(
                            resource_name="load-1",
                            intervals=[Interval(id=0, payloads=[ValuesMap(type="USAGE", values=[61.0])])],
                        )
                    ],
                )
            )
        await wait_for(lambda: states[:3] == ["sent", "acknowledged", "active"])
        row = runtime.fleet.index["ven-a-load"]
        await wait_for(lambda: runtime.fleet.p_w[row] == -61_000.0)
    finally:
        await runtime.stop()
        await receiver.stop()
