"""EV charge points as OCPP 1.6J and 2.0.1 websocket clients (security profile 1: basic auth).

The 2.0.1 stations' vehicles announce their need (:data:`NEED_WH` by :data:`DWELL` from
connecting) in NotifyEVChargingNeeds, so the orchestrator plans them; 1.6 has no such message
and its stations are not planned.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta

from derms.adapters.base import Adapter
from derms.adapters.ocpp import OcppAdapter
from derms.adapters.ocpp.settings import OcppSettings
from derms.core.clock import Clock
from derms.core.der import Capabilities, Der, DerKind
from derms.demo_protocols.base import DeviceGroup, Placement
from derms.sim.protocols.ocpp import SimChargePoint

EVSE = 1
CHARGER = Capabilities(w_max_consume=11_000.0, va_max=11_000.0, phases=3, v_nom=230.0)
NEED_WH = 30_000.0
"""Energy a 2.0.1 station's vehicle asks for (about 2.7 h at the charger's rating)."""
DWELL = timedelta(hours=8)
"""How long a 2.0.1 station's vehicle stays plugged in (clock time from connecting)."""


class OcppChargePoints(DeviceGroup):
    protocol = "ocpp"
    clients = True

    def __init__(self, clock: Clock, speed: float) -> None:
        super().__init__(clock, speed)
        self.stations: list[tuple[str, str]] = []
        """(OCPP version, charge point id); alternately 1.6J and 2.0.1."""
        self.passwords: dict[str, str] = {}

    async def prepare(self, placements: Sequence[Placement]) -> list[Der]:
        ders = []
        for place in placements:
            station = f"DEMO-CP-{place.index:03d}"
            self.passwords[station] = secrets.token_urlsafe(16)
            self.stations.append(("1.6" if place.index % 2 == 0 else "2.0.1", station))
            ders.append(place.der(DerKind.EV_CHARGER, CHARGER, f"{station}/{EVSE}"))
        return ders

    def settings(self) -> OcppSettings:
        return OcppSettings(port=0, passwords=self.passwords)

    async def connect(self, adapter: Adapter) -> None:
        assert isinstance(adapter, OcppAdapter)
        url = f"ws://{adapter.settings.host}:{adapter.csms.port}{adapter.settings.path_prefix}"
        for version, station in self.stations:
            point = SimChargePoint(
                station,
                url,
                self.clock,
                version=version,
                password=self.passwords[station],
                ev_max_w=CHARGER.w_max_consume,
                v_nom=CHARGER.v_nom,
                meter_interval_s=60.0,  # clock seconds: MeterValues every simulated minute
                need_wh=NEED_WH if version == "2.0.1" else None,
                departure=self.clock.now() + DWELL if version == "2.0.1" else None,
            )
            self.spawn(point.run(), f"ocpp {station}")
