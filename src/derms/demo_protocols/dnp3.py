"""A MESA-DER plant controller (PV + battery) behind a DNP3 outstation (IEEE 1815.2)."""

from __future__ import annotations

from collections.abc import Sequence

from derms.adapters.dnp3 import Dnp3Settings
from derms.core.clock import Clock
from derms.core.der import Capabilities, Der, DerKind
from derms.demo_protocols.base import DeviceGroup, Placement
from derms.sim.protocols.dnp3 import PlantModel, SimulatedPlant

OUTSTATION, MASTER = 10, 1


class Dnp3Plants(DeviceGroup):
    protocol = "dnp3"
    clients = False

    def __init__(self, clock: Clock, speed: float) -> None:
        super().__init__(clock, speed)
        self.plants: list[SimulatedPlant] = []

    async def prepare(self, placements: Sequence[Placement]) -> list[Der]:
        ders = []
        for place in placements:
            model = PlantModel(pv_available_w=2_000_000.0 + 500_000.0 * (place.seed % 3))
            plant = SimulatedPlant(model, port=0, address=OUTSTATION, master_address=MASTER, step_s=0.5)
            await plant.start()
            self.plants.append(plant)
            caps = Capabilities(
                w_max=model.w_max,
                w_max_consume=model.battery_w_max,
                va_max=model.w_max,
                var_max_inject=1e6,
                var_max_absorb=1e6,
                wh_max=model.battery_wh,
                v_nom=model.v_v,
                phases=3,
            )
            ders.append(place.der(DerKind.UTILITY_BATTERY, caps, f"127.0.0.1:{plant.port}/{OUTSTATION}"))
        return ders

    def settings(self) -> Dnp3Settings:
        # Wall-clock intervals: the master polls class events every second.
        return Dnp3Settings(master_address=MASTER, event_poll_interval_s=1.0, reconnect_delay_s=0.5)

    async def stop(self) -> None:
        for plant in self.plants:
            await plant.stop()
        self.plants.clear()
