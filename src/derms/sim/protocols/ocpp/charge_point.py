"""A simulated charge point: a real OCPP 1.6J or 2.0.1 client (``ocpp`` library over websockets).

It boots, reports status, runs one transaction on connector/EVSE 1 with a vehicle drawing up
to ``ev_max_w``, stores the charging profiles it is sent, answers GetCompositeSchedule from
them (:mod:`.composite`) and reports the power it draws under the composite limit in
MeterValues every ``meter_interval_s`` of its clock. Given ``need_wh``, the vehicle stops
drawing once that much is delivered and an OCPP 2.0.1 station announces it (with
``departure``) in NotifyEVChargingNeeds (K15, AC parameters) after the transaction starts.
At ``departure`` the vehicle leaves: the transaction ends (1.6 StopTransaction, 2.0.1
TransactionEvent ``Ended``) and the station draws nothing more.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import datetime
from typing import Any

from websockets.asyncio.client import connect

from derms.adapters.ocpp.profiles import (
    ChargingProfile,
    CompositeSchedule,
    ProfilePurpose,
    RateUnit,
    iso,
    profile_from_wire,
)
from derms.core.clock import Clock
from derms.sim.protocols.ocpp.composite import ProfileStore
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16 import enums as en16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import enums as en201

log = logging.getLogger(__name__)

_PURPOSES = {
    "ChargePointMaxProfile": ProfilePurpose.STATION_MAX,
    "ChargingStationMaxProfile": ProfilePurpose.STATION_MAX,
    "TxDefaultProfile": ProfilePurpose.TX_DEFAULT,
    "TxProfile": ProfilePurpose.TX,
}


class SimChargePoint:
    """One simulated charging station with one EVSE."""

    def __init__(
        self,
        station_id: str,
        url: str,
        clock: Clock,
        *,
        version: str = "1.6",
        password: str | None = None,
        ev_max_w: float = 11_000.0,
        v_nom: float = 230.0,
        meter_interval_s: float = 60.0,
        need_wh: float | None = None,
        departure: datetime | None = None,
    ) -> None:
        if version not in ("1.6", "2.0.1"):
            raise ValueError(f"unsupported OCPP version {version}")
        self.station_id = station_id
        self.url = url.rstrip("/") + "/" + station_id
        self.clock = clock
        self.version = version
        self.password = password
        self.ev_max_w = ev_max_w
        self.meter_interval_s = meter_interval_s
        self.need_wh = need_wh
        self.departure = departure
        self.needs_status: str | None = None
        """The CSMS's answer to NotifyEVChargingNeeds."""
        self.v_nom = v_nom
        self.store = ProfileStore(v_nom=v_nom)
        self.tx_id: str | None = None
        self.tx_start = clock.now()
        self.energy_wh = 0.0
        self.profiles_received = 0
        self.booted = asyncio.Event()
        self.profile_applied = asyncio.Event()
        self._session: Cp16 | Cp201 | None = None

    # the device
    def power_w(self) -> float:
        if self.tx_id is None or (self.need_wh is not None and self.energy_wh >= self.need_wh):
            return 0.0
        limit = self.store.limit_at(1, self.clock.now(), self.tx_id, self.tx_start)
        return min(self.ev_max_w, limit) if limit is not None else self.ev_max_w

    def composite(self, evse_id: int, duration_s: int, unit: RateUnit) -> CompositeSchedule:
        start = self.clock.now().replace(microsecond=0)
        return self.store.composite(
            evse_id, start, duration_s, unit, self.ev_max_w, self.tx_id, self.tx_start
        )

    def install(self, evse_id: int, profile: ChargingProfile) -> bool:
        if profile.purpose is ProfilePurpose.TX and (
            self.tx_id is None or profile.transaction_id != self.tx_id
        ):
            return False
        self.store.install(evse_id, profile)
        self.profiles_received += 1
        self.profile_applied.set()
        return True

    # the connection
    async def run(self) -> None:
        """Connect, boot, start a transaction and report meter values until cancelled."""
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.station_id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        subprotocol = "ocpp1.6" if self.version == "1.6" else "ocpp2.0.1"
        async with connect(
            self.url, subprotocols=[subprotocol], additional_headers=headers,  # type: ignore[list-item]
            compression=None, ping_interval=None, open_timeout=60,
        ) as ws:  # fmt: skip
            session: Cp16 | Cp201 = (_Session16 if self.version == "1.6" else _Session201)(
                self.station_id, ws, self
            )
            self._session = session
            reader = asyncio.create_task(session.start(), name=f"ocpp sim {self.station_id}")
            try:
                await session.boot()  # type: ignore[union-attr]
                self.booted.set()
                while True:
                    if self.tx_id is not None and self.departure and self.clock.now() >= self.departure:
                        await session.end()  # type: ignore[union-attr]
                        self.tx_id = None
                    await session.meter(self.power_w())  # type: ignore[union-attr]
                    await self.clock.sleep(self.meter_interval_s)
                    self.energy_wh += self.power_w() * self.meter_interval_s / 3600.0
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)


class _Session16(Cp16):
    def __init__(self, station_id: str, connection: Any, sim: SimChargePoint) -> None:
        super().__init__(station_id, connection, response_timeout=60, logger=log)
        self.sim = sim

    async def boot(self) -> None:
        await self.call(call16.BootNotification(charge_point_vendor="derms", charge_point_model="sim-ac"))
        await self.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
        result = await self.call(
            call16.StartTransaction(
                connector_id=1, id_tag="SIM", meter_start=0, timestamp=iso(self.sim.clock.now())
            )
        )
        self.sim.tx_id = str(result.transaction_id)
        self.sim.tx_start = self.sim.clock.now()
        await self.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))

    async def end(self) -> None:
        await self.call(
            call16.StopTransaction(
                meter_stop=round(self.sim.energy_wh), timestamp=iso(self.sim.clock.now()),
                transaction_id=int(self.sim.tx_id or 0), reason="EVDisconnected",
            )
        )  # fmt: skip

    async def meter(self, watts: float) -> None:
        await self.call(
            call16.MeterValues(
                connector_id=1, transaction_id=int(self.sim.tx_id) if self.sim.tx_id else None,
                meter_value=[{"timestamp": iso(self.sim.clock.now()), "sampled_value": [
                    {"value": f"{watts:.1f}", "measurand": "Power.Active.Import", "unit": "W"},
                    {"value": f"{self.sim.energy_wh:.1f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                ]}],
            )
        )  # fmt: skip

    @on(en16.Action.set_charging_profile)
    def _set(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        accepted = self.sim.install(connector_id, profile_from_wire(cs_charging_profiles))
        return result16.SetChargingProfile(status="Accepted" if accepted else "Rejected")

    @on(en16.Action.clear_charging_profile)
    def _clear(self, id: int | None = None, connector_id: int | None = None,
               charging_profile_purpose: str | None = None, stack_level: int | None = None) -> Any:  # fmt: skip
        purpose = _PURPOSES.get(charging_profile_purpose or "")
        removed = self.sim.store.clear(id, connector_id, purpose, stack_level)
        return result16.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on(en16.Action.get_composite_schedule)
    def _composite(self, connector_id: int, duration: int, charging_rate_unit: str | None = None) -> Any:
        schedule = self.sim.composite(connector_id, int(duration), RateUnit(charging_rate_unit or "W"))
        return result16.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=iso(schedule.start),
            charging_schedule={
                "duration": schedule.duration_s, "start_schedule": iso(schedule.start),
                "charging_rate_unit": schedule.unit.value,
                "charging_schedule_period": [
                    {"start_period": p.start_s, "limit": p.limit, **({"number_phases": p.phases} if p.phases else {})}
                    for p in schedule.periods
                ],
            },
        )  # fmt: skip


class _Session201(Cp201):
    def __init__(self, station_id: str, connection: Any, sim: SimChargePoint) -> None:
        super().__init__(station_id, connection, response_timeout=60, logger=log)
        self.sim = sim

    async def boot(self) -> None:
        now = iso(self.sim.clock.now())
        await self.call(
            call201.BootNotification(
                charging_station={"vendor_name": "derms", "model": "sim-ac"}, reason="PowerUp"
            )
        )
        await self.call(
            call201.StatusNotification(timestamp=now, connector_status="Occupied", evse_id=1, connector_id=1)
        )
        self.sim.tx_id = f"{self.sim.station_id}-1"
        self.sim.tx_start = self.sim.clock.now()
        await self.call(
            call201.TransactionEvent(
                event_type="Started", timestamp=now, trigger_reason="CablePluggedIn", seq_no=0,
                transaction_info={"transaction_id": self.sim.tx_id, "charging_state": "Charging"},
                evse={"id": 1, "connector_id": 1},
            )
        )  # fmt: skip
        if self.sim.need_wh is not None:
            amps = round(self.sim.ev_max_w / (3 * self.sim.v_nom))
            result = await self.call(
                call201.NotifyEVChargingNeeds(
                    evse_id=1,
                    charging_needs={
                        "requested_energy_transfer": "AC_three_phase",
                        **({"departure_time": iso(self.sim.departure)} if self.sim.departure else {}),
                        "ac_charging_parameters": {
                            "energy_amount": round(self.sim.need_wh), "ev_min_current": 6,
                            "ev_max_current": amps, "ev_max_voltage": 400,
                        },
                    },
                )
            )  # fmt: skip
            self.sim.needs_status = str(result.status)

    async def end(self) -> None:
        await self.call(
            call201.TransactionEvent(
                event_type="Ended", timestamp=iso(self.sim.clock.now()), trigger_reason="EVDeparted", seq_no=1,
                transaction_info={"transaction_id": self.sim.tx_id, "stopped_reason": "EVDisconnected"},
                evse={"id": 1, "connector_id": 1},
            )
        )  # fmt: skip

    async def meter(self, watts: float) -> None:
        await self.call(
            call201.MeterValues(
                evse_id=1,
                meter_value=[{"timestamp": iso(self.sim.clock.now()), "sampled_value": [
                    {"value": watts, "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "W"}},
                    {"value": self.sim.energy_wh, "measurand": "Energy.Active.Import.Register"},
                ]}],
            )
        )  # fmt: skip

    @on(en201.Action.set_charging_profile)
    def _set(self, evse_id: int, charging_profile: dict[str, Any], **kw: Any) -> Any:
        accepted = self.sim.install(evse_id, profile_from_wire(charging_profile))
        if accepted:
            return result201.SetChargingProfile(status="Accepted")
        return result201.SetChargingProfile(status="Rejected", status_info={"reason_code": "TxNotFound"})

    @on(en201.Action.clear_charging_profile)
    def _clear(self, charging_profile_id: int | None = None, charging_profile_criteria: dict[str, Any] | None = None,
               **kw: Any) -> Any:  # fmt: skip
        criteria = charging_profile_criteria or {}
        purpose = _PURPOSES.get(criteria.get("charging_profile_purpose") or "")
        removed = self.sim.store.clear(
            charging_profile_id, criteria.get("evse_id"), purpose, criteria.get("stack_level")
        )
        return result201.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on(en201.Action.get_composite_schedule)
    def _composite(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **kw: Any
    ) -> Any:
        schedule = self.sim.composite(evse_id, int(duration), RateUnit(charging_rate_unit or "W"))
        return result201.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id, "duration": schedule.duration_s, "schedule_start": iso(schedule.start),
                "charging_rate_unit": schedule.unit.value,
                "charging_schedule_period": [
                    {"start_period": p.start_s, "limit": p.limit, **({"number_phases": p.phases} if p.phases else {})}
                    for p in schedule.periods
                ],
            },
        )  # fmt: skip
