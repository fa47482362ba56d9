"""PV inverters and home batteries as SunSpec Modbus TCP servers, on the simulator's physics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from derms.adapters.sunspec.settings import SunSpecSettings
from derms.core.clock import Clock
from derms.core.der import Capabilities, Der, DerKind
from derms.demo_protocols.base import DeviceGroup, Placement
from derms.sim.protocols.sunspec import SunSpecDeviceServer, fleet_device

UNIT = 1
PV = Capabilities(w_max=10_000.0, va_max=10_000.0, var_max_inject=4_400.0, var_max_absorb=4_400.0)
BATTERY = Capabilities(
    w_max=5_000.0,
    w_max_consume=5_000.0,
    va_max=5_000.0,
    var_max_inject=2_200.0,
    var_max_absorb=2_200.0,
    wh_max=13_500.0,
    round_trip_efficiency=0.9,
)


class SunSpecDevices(DeviceGroup):
    protocol = "sunspec"
    clients = False

    def __init__(self, clock: Clock, speed: float) -> None:
        super().__init__(clock, speed)
        self.servers: list[SunSpecDeviceServer] = []

    async def prepare(self, placements: Sequence[Placement]) -> list[Der]:
        ders = []
        for place in placements:
            kind, caps = (
                (DerKind.PV_INVERTER, PV) if place.index % 2 == 0 else (DerKind.HOME_BATTERY, BATTERY)
            )
            der = place.der(kind, caps, "")
            server = SunSpecDeviceServer(
                *fleet_device(der, self.clock, seed=place.seed), self.clock, port=0, device_id=UNIT
            )
            await server.start()
            self.servers.append(server)
            ders.append(replace(der, address=f"127.0.0.1:{server.port}/{UNIT}"))
        return ders

    def settings(self) -> SunSpecSettings:
        # Clock seconds: one poll per simulated minute.
        return SunSpecSettings(poll_interval_s=60.0, backoff_initial_s=5.0)

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()
        self.servers.clear()
