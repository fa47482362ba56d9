"""Electric water heaters behind CTA-2045-B SGDs on TCP."""

from __future__ import annotations

from collections.abc import Sequence

from derms.adapters.cta2045 import Cta2045Settings
from derms.core.clock import Clock
from derms.core.der import Capabilities, Der, DerKind
from derms.demo_protocols.base import DeviceGroup, Placement
from derms.sim.protocols.cta2045 import SimulatedWaterHeater, WaterHeaterSgd


class Cta2045WaterHeaters(DeviceGroup):
    protocol = "cta2045"
    clients = False

    def __init__(self, clock: Clock, speed: float) -> None:
        super().__init__(clock, speed)
        self.sgds: list[WaterHeaterSgd] = []

    async def prepare(self, placements: Sequence[Placement]) -> list[Der]:
        ders = []
        for place in placements:
            heater = SimulatedWaterHeater(t_tank_c=47.0 + place.seed % 5, seed=place.seed)
            sgd = WaterHeaterSgd(heater, step_s=0.5, time_scale=self.speed)
            await sgd.start()
            self.sgds.append(sgd)
            caps = Capabilities(w_max_consume=heater.element_w)
            ders.append(place.der(DerKind.WATER_HEATER, caps, f"127.0.0.1:{sgd.port}"))
        return ders

    def settings(self) -> Cta2045Settings:
        # Wall-clock intervals: operational state and commodity read every second.
        return Cta2045Settings(poll_interval_s=1.0, reconnect_delay_s=0.5)

    async def stop(self) -> None:
        for sgd in self.sgds:
            await sgd.stop()
        self.sgds.clear()
