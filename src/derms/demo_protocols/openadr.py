"""C&I loads with shed capability behind OpenADR VENs: 2.0b (even devices) and 3.0.1 (odd).

2.0b VENs register with the VTN, offer their usage and status reports and poll (oadrPoll);
platform commands reach them as 2.0b events. 3.0.1 VENs get OAuth2 client credentials,
create their VEN and resource objects and read events over REST/JSON; the demo publishes one
3.0.1 program with a day-long ``IMPORT_CAPACITY_LIMIT`` event above each load's peak (it
binds nothing), so that the VENs report their usage against it as 3.0.1 reports, which the
adapter turns into telemetry.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence

import httpx

from derms.adapters.base import Adapter
from derms.adapters.openadr.adapter import OpenAdrVtnAdapter
from derms.adapters.openadr.settings import Oadr3Client, OpenAdrSettings
from derms.core.clock import Clock
from derms.core.der import Capabilities, Der, DerKind
from derms.demo_protocols.base import DeviceGroup, Placement
from derms.sim.protocols.openadr.load import SimulatedCiLoad
from derms.sim.protocols.openadr.ven3 import CiLoadVen3
from derms.sim.protocols.openadr.ven20b import CiLoadVen20b

RESOURCE = "load-1"
BUSINESS_LOGIC = "demo-bl"


class OpenAdrVens(DeviceGroup):
    protocol = "openadr"
    clients = True

    def __init__(self, clock: Clock, speed: float) -> None:
        super().__init__(clock, speed)
        self.loads: list[tuple[Der, SimulatedCiLoad, str]] = []
        """(DER, load, OpenADR version)."""
        self.secrets: dict[str, str] = {}
        self._stop = asyncio.Event()

    @staticmethod
    def ven_name(place: Placement) -> str:
        return f"demo-ci-{place.index:03d}"

    async def prepare(self, placements: Sequence[Placement]) -> list[Der]:
        self.secrets[BUSINESS_LOGIC] = secrets.token_urlsafe(16)
        for place in placements:
            caps = Capabilities(
                w_max_consume=150_000.0 + 25_000.0 * (place.seed % 4), sheddable_fraction=0.3, phases=3
            )
            load = SimulatedCiLoad(
                w_peak=caps.w_max_consume, flexible_fraction=caps.sheddable_fraction, seed=place.seed
            )
            name = self.ven_name(place)
            version = "2.0b" if place.index % 2 == 0 else "3.0.1"
            if version == "3.0.1":
                self.secrets[name] = secrets.token_urlsafe(16)
            self.loads.append((place.der(DerKind.CI_LOAD, caps, f"{name}/{RESOURCE}"), load, version))
        return [der for der, _, _ in self.loads]

    def settings(self) -> OpenAdrSettings:
        clients = [
            Oadr3Client(client_id=name, client_secret=secret, role="VEN", ven_name=name)
            for name, secret in self.secrets.items()
            if name != BUSINESS_LOGIC
        ]
        clients.append(
            Oadr3Client(client_id=BUSINESS_LOGIC, client_secret=self.secrets[BUSINESS_LOGIC], role="BL")
        )
        # poll_freq_s is wall time (oadrPoll once a second); reports every simulated minute.
        return OpenAdrSettings(
            port=0,
            poll_freq_s=1.0,
            report_granularity_s=60.0,
            status_tick_s=0.5,
            oadr3_enabled=any(version == "3.0.1" for *_, version in self.loads),
            oadr3_port=0,
            oadr3_clients=clients,
        )

    async def connect(self, adapter: Adapter) -> None:
        assert isinstance(adapter, OpenAdrVtnAdapter)
        v3 = [(der, load) for der, load, version in self.loads if version == "3.0.1"]
        if v3:
            await self._publish_capacity_event(adapter.url3, max(load.w_peak for _, load in v3))
        for der, load, version in self.loads:
            name = der.address.partition("/")[0]
            if version == "2.0b":
                ven20b = CiLoadVen20b(adapter.url, name, self.clock, load, RESOURCE)
                self.spawn(ven20b.run(self._stop, dt_s=60.0), f"openadr 2.0b {der.id}")
            else:
                ven3 = CiLoadVen3(adapter.url3, name, self.secrets[name], name, self.clock, load, RESOURCE)
                self.spawn(ven3.run(self._stop, poll_s=60.0, dt_s=60.0), f"openadr 3.0.1 {der.id}")

    async def _publish_capacity_event(self, base_url: str, cap_w: float) -> None:
        """A 3.0.1 program and one day-long event for the demo's 3.0.1 VENs (OpenADR 3.0.1
        user guide: business logic creates programs and events; VENs read them)."""
        async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
            token = await http.post(
                "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": BUSINESS_LOGIC,
                    "client_secret": self.secrets[BUSINESS_LOGIC],
                },
            )
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            program = await http.post("/programs", json={"programName": "demo-capacity"}, headers=headers)
            program.raise_for_status()
            event = {
                "programID": program.json()["id"],
                "eventName": "demo-capacity-day",
                "targets": [{"type": "RESOURCE_NAME", "values": [RESOURCE]}],
                "intervalPeriod": {"start": self.clock.now().isoformat(), "duration": "P1D"},
                "intervals": [
                    {"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [cap_w / 1e3]}]}
                ],
            }
            (await http.post("/events", json=event, headers=headers)).raise_for_status()

    async def stop(self) -> None:
        self._stop.set()  # each VEN leaves its loop and closes its HTTP client
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        await self.cancel_tasks()
