"""The adapter serves the 3.0.1 VTN beside 2.0b; 3.x USAGE reports become platform telemetry."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from derms.adapters.base import AdapterContext
from derms.adapters.openadr.adapter import create_adapter
from derms.adapters.openadr.settings import Oadr3Client, OpenAdrSettings
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.der import Capabilities, Der, DerKind
from derms.core.events import decode_telemetry
from derms.sim.protocols.openadr.load import SimulatedCiLoad
from derms.sim.protocols.openadr.ven3 import CiLoadVen3

NOON = datetime(2026, 7, 15, 13, 0, tzinfo=UTC)


async def test_oadr3_reports_become_telemetry():
    clock = ManualClock(NOON)
    bus = MemoryBus(clock)
    await bus.start()
    telemetry = []

    async def on_telemetry(msg):
        telemetry.extend(decode_telemetry(msg.data))

    await bus.subscribe("telemetry.openadr", on_telemetry)
    settings = OpenAdrSettings(
        port=0,
        oadr3_enabled=True,
        oadr3_port=0,
        oadr3_clients=[
            Oadr3Client(client_id="bl", client_secret="s", role="BL"),
            Oadr3Client(client_id="ci", client_secret="c", role="VEN", ven_name="ci-3"),
        ],
    )
    adapter = create_adapter(AdapterContext(bus, clock, "openadr"), settings)
    await adapter.register_device(
        Der(
            "ci-3-load",
            "site",
            DerKind.CI_LOAD,
            Capabilities(w_max_consume=2e5),
            "openadr",
            "ci-3/load-1",
            "t",
        )
    )
    await adapter.start()
    sim = CiLoadVen3(adapter.url3, "ci", "c", "ci-3", clock, SimulatedCiLoad(seed=4))
    try:
        async with httpx.AsyncClient() as http:
            token = (
                await http.post(
                    f"{adapter.url3}/auth/token",
                    data={"grant_type": "client_credentials", "client_id": "bl", "client_secret": "s"},
                )
            ).json()["access_token"]
            bl = {"Authorization": f"Bearer {token}"}
            program = (
                await http.post(f"{adapter.url3}/programs", json={"programName": "p"}, headers=bl)
            ).json()
            await sim.connect()
            event = {
                "programID": program["id"],
                "intervalPeriod": {"start": NOON.isoformat(), "duration": "PT1H"},
                "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [3]}]}],
            }
            assert (await http.post(f"{adapter.url3}/events", json=event, headers=bl)).status_code == 201
        await sim.poll()
        clock.advance(60)
        p = sim.step(60.0)
        assert await sim.report() == 1
        await bus.drain()
        assert [(t.der_id, round(t.p_w, 6)) for t in telemetry] == [("ci-3-load", round(p, 6))]
    finally:
        await sim.close()
        await adapter.stop()
        await bus.close()
