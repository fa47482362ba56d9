"""C&I loads with shed capability behind OpenADR 2.0b VENs, polling the VTN over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from derms.adapters.base import Adapter
from derms.adapters.openadr.adapter import OpenAdrVtnAdapter
from derms.adapters.openadr.settings import OpenAdrSettings
from derms.core.clock import Clock
from derms.core.der import Capabilities, Der, DerKind
from derms.demo_protocols.base import DeviceGroup, Placement
from derms.sim.protocols.openadr.load import SimulatedCiLoad
from derms.sim.protocols.openadr.ven20b import CiLoadVen20b

RESOURCE = "load-1"


class OpenAdrVens(DeviceGroup):
    protocol = "openadr"
    clients = True

    def __init__(self, clock: Clock, speed: float) -> None:
        super().__init__(clock, speed)
        self.loads: list[tuple[Der, SimulatedCiLoad]] = []
        self._stop = asyncio.Event()

    @staticmethod
    def ven_name(place: Placement) -> str:
        return f"demo-ci-{place.index:03d}"

    async def prepare(self, placements: Sequence[Placement]) -> list[Der]:
        for place in placements:
            load = SimulatedCiLoad(w_peak=150_000.0 + 25_000.0 * (place.seed % 4), seed=place.seed)
            caps = Capabilities(w_max_consume=load.w_peak, phases=3)
            der = place.der(DerKind.CI_LOAD, caps, f"{self.ven_name(place)}/{RESOURCE}")
            self.loads.append((der, load))
        return [der for der, _ in self.loads]

    def settings(self) -> OpenAdrSettings:
        # poll_freq_s is wall time (oadrPoll once a second); reports every simulated minute.
        return OpenAdrSettings(port=0, poll_freq_s=1.0, report_granularity_s=60.0, status_tick_s=0.5)

    async def connect(self, adapter: Adapter) -> None:
        assert isinstance(adapter, OpenAdrVtnAdapter)
        for der, load in self.loads:
            ven = CiLoadVen20b(adapter.url, der.address.partition("/")[0], self.clock, load, RESOURCE)
            self.spawn(ven.run(self._stop, dt_s=60.0), f"openadr {der.id}")

    async def stop(self) -> None:
        self._stop.set()  # each VEN leaves its loop and closes its HTTP client
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        await self.cancel_tasks()
