"""The OCPP adapter: the CSMS wired to the derms adapter contract.

A DER's ``address`` is ``<chargePointId>`` (the whole station, EVSE/connector 0) or
``<chargePointId>/<evseId>``. Commands are :class:`SetProfileCommand` or
:class:`ClearProfileCommand`; their outcome is reported as SENT, then ACKNOWLEDGED
(Accepted) or FAILED (Rejected, CallError, timeout, not connected) with the station's reason.

EV sessions: an OCPP 2.0.1 NotifyEVChargingNeeds (K15; ``chargingNeeds`` AC or DC
``energyAmount`` [Wh] and ``departureTime``) starts a need, answered Accepted when the EVSE is
a registered DER (the orchestrator schedules it). Each MeterValues/TransactionEvent with an
``Energy.Active.Import.Register`` reading then publishes the need less the energy metered
since the notification as :class:`~derms.core.device_state.DeviceState` (``der.state.ocpp``);
the end of the transaction clears it. Charger losses are not known, so ``energyAmount`` is
taken as energy at the meter. OCPP 1.6 has no charging needs and the registry holds no
enrolment defaults (usual departure, energy), so 1.6 sessions publish no need.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from ocpp.exceptions import OCPPError
from websockets.exceptions import ConnectionClosed

from derms.adapters.base import Adapter, AdapterContext, NativeCommand
from derms.adapters.ocpp.csms import Csms
from derms.adapters.ocpp.meter import energy_register_wh, to_telemetry
from derms.adapters.ocpp.profiles import (
    ClearProfileCommand,
    CompositeSchedule,
    RateUnit,
    SetProfileCommand,
    parse_iso,
)
from derms.adapters.ocpp.settings import OcppSettings
from derms.adapters.ocpp.stations import Station
from derms.core.controls import ControlKind
from derms.core.der import Der
from derms.core.device_state import DeviceState
from derms.core.dispatch import CommandState
from derms.core.errors import NotFound
from derms.core.telemetry import OperationalStatus

log = logging.getLogger(__name__)

_STATUS = {
    "Available": OperationalStatus.STANDBY,
    "Preparing": OperationalStatus.STANDBY,
    "Occupied": OperationalStatus.ON,
    "Charging": OperationalStatus.ON,
    "SuspendedEV": OperationalStatus.STANDBY,
    "SuspendedEVSE": OperationalStatus.STANDBY,
    "Finishing": OperationalStatus.STANDBY,
    "Reserved": OperationalStatus.STANDBY,
    "Unavailable": OperationalStatus.OFF,
    "Faulted": OperationalStatus.FAULT,
}


@dataclass(slots=True)
class _Need:
    """An EV's notified need: ``energy_wh`` from the meter register ``register_wh`` on (None
    until a register reading arrives)."""

    energy_wh: float
    departure: datetime | None
    register_wh: float | None


def parse_address(address: str) -> tuple[str, int]:
    """``"CP1"`` -> ("CP1", 0); ``"CP1/2"`` -> ("CP1", 2)."""
    station, _, evse = address.partition("/")
    if not station or (evse and not evse.isdigit()):
        raise ValueError(f"OCPP address must be <chargePointId>[/<evseId>], not {address!r}")
    return station, int(evse or 0)


class OcppAdapter(Adapter):
    """OCPP 1.6J/2.0.1 CSMS as a derms adapter."""

    protocol: ClassVar[str] = "ocpp"
    native_controls: ClassVar[frozenset[ControlKind]] = frozenset(
        {ControlKind.CHARGING_LIMIT, ControlKind.LOAD_LIMIT}
    )

    def __init__(self, context: AdapterContext, settings: OcppSettings) -> None:
        super().__init__(context)
        self.settings = settings
        self.csms = Csms(settings, self, context.clock)
        self.csms.on_closed(self._closed)
        self._ders: dict[str, tuple[str, int]] = {}
        self._by_point: dict[tuple[str, int], str] = {}
        self._status: dict[tuple[str, int], OperationalStatus] = {}
        self._register: dict[str, float] = {}
        """Latest energy register reading per DER [Wh]."""
        self._needs: dict[str, _Need] = {}

    async def start(self) -> None:
        await self.csms.start()

    async def stop(self) -> None:
        await self.csms.stop()

    async def register_device(self, der: Der) -> None:
        point = parse_address(der.address)
        self._ders[der.id] = point
        self._by_point[point] = der.id

    def _der_for(self, station_id: str, evse_id: int) -> str | None:
        return self._by_point.get((station_id, evse_id)) or self._by_point.get((station_id, 0))

    def station(self, der_id: str) -> tuple[Station, int]:
        """The connected station and EVSE of a registered DER; raises NotFound / ConnectionError."""
        try:
            station_id, evse_id = self._ders[der_id]
        except KeyError:
            raise NotFound("ocpp der", der_id) from None
        station = self.csms.registry.stations.get(station_id)
        if station is None:
            raise ConnectionError(f"charge point {station_id} is not connected")
        return station, evse_id

    async def send(self, command: NativeCommand) -> None:
        if command.der_id not in self._ders:
            raise NotFound("ocpp der", command.der_id)
        payload = command.payload
        report = self.context.report_command
        try:
            station, _ = self.station(command.der_id)
        except ConnectionError as exc:
            await report(command.command_id, command.der_id, CommandState.FAILED, str(exc))
            return
        await report(command.command_id, command.der_id, CommandState.SENT, f"OCPP {station.version}")
        try:
            if isinstance(payload, SetProfileCommand):
                status, reason = await station.set_profile(payload)
            elif isinstance(payload, ClearProfileCommand):
                status, reason = await station.clear_profiles(payload), ""
            else:
                raise TypeError(f"OCPP adapter cannot send {type(payload).__name__}")
        except (OCPPError, TimeoutError, ConnectionError, ConnectionClosed, TypeError, ValueError) as exc:
            log.warning("command %s to %s failed: %s", command.command_id, command.der_id, exc)
            await report(
                command.command_id, command.der_id, CommandState.FAILED, f"{type(exc).__name__}: {exc}"
            )
            return
        if status == "Accepted":
            await report(command.command_id, command.der_id, CommandState.ACKNOWLEDGED, status)
        else:
            detail = f"charge point answered {status}" + (f" ({reason})" if reason else "")
            await report(command.command_id, command.der_id, CommandState.FAILED, detail)

    async def composite_schedule(
        self, der_id: str, duration_s: int, unit: RateUnit | None = None
    ) -> CompositeSchedule | None:
        """GetCompositeSchedule for the DER's EVSE (1.6 clause 5.7; 2.0.1 K08)."""
        station, evse_id = self.station(der_id)
        return await station.composite_schedule(evse_id, duration_s, unit)

    # StationObserver
    async def on_boot(self, station: Station, info: Mapping[str, Any]) -> None:
        known = [der for (sid, _), der in self._by_point.items() if sid == station.id]
        if not known:
            await self.context.device_discovered(
                station.id, {"ocpp_version": station.version, **{k: str(v) for k, v in info.items()}}
            )
        for der_id in known:
            await self.context.publish_status(der_id, True, f"booted OCPP {station.version}")

    async def on_status(self, station: Station, evse_id: int, status: str) -> None:
        self._status[(station.id, evse_id)] = _STATUS.get(status, OperationalStatus.UNKNOWN)
        der_id = self._der_for(station.id, evse_id)
        if der_id is not None:
            await self.context.publish_status(der_id, status != "Unavailable", status)

    async def on_meter(self, station: Station, evse_id: int, meter_values: list[dict[str, Any]]) -> None:
        der_id = self._der_for(station.id, evse_id)
        if der_id is None:
            log.debug("meter values from unregistered %s/%s", station.id, evse_id)
            return
        status = self._status.get((station.id, evse_id), OperationalStatus.UNKNOWN)
        samples = to_telemetry(der_id, meter_values, self.context.clock.now(), status)
        await self.context.publish_telemetry(samples)
        register = energy_register_wh(meter_values)
        if register is not None:
            self._register[der_id] = register
            need = self._needs.get(der_id)
            if need is not None:
                if need.register_wh is None:
                    need.register_wh = register
                await self._publish_need(der_id, need)

    async def on_transaction(self, station: Station, evse_id: int, tx_id: str, event: str) -> None:
        der_id = self._der_for(station.id, evse_id)
        if der_id is not None:
            await self.context.publish_status(der_id, True, f"transaction {tx_id} {event}")
            if event == "Ended" and self._needs.pop(der_id, None) is not None:
                await self.context.publish_device_state([DeviceState(der_id, self.context.clock.now())])

    async def on_charging_needs(self, station: Station, evse_id: int, needs: Mapping[str, Any]) -> bool:
        der_id = self._der_for(station.id, evse_id)
        if der_id is None:
            return False
        params = needs.get("ac_charging_parameters") or needs.get("dc_charging_parameters") or {}
        energy = params.get("energy_amount")
        if energy is None:
            return False
        departure = needs.get("departure_time")
        need = _Need(
            float(energy), parse_iso(str(departure)) if departure else None, self._register.get(der_id)
        )
        self._needs[der_id] = need
        await self._publish_need(der_id, need)
        return True

    async def _publish_need(self, der_id: str, need: _Need) -> None:
        delivered = 0.0 if need.register_wh is None else max(self._register[der_id] - need.register_wh, 0.0)
        state = DeviceState(
            der_id,
            self.context.clock.now(),
            ev_energy_needed_wh=max(need.energy_wh - delivered, 0.0),
            ev_departure=need.departure,
        )
        await self.context.publish_device_state([state])

    async def _closed(self, station_id: str) -> None:
        for (sid, _), der_id in list(self._by_point.items()):
            if sid == station_id:
                await self.context.publish_status(der_id, False, "disconnected")


def create_adapter(context: AdapterContext, settings: OcppSettings | None = None) -> OcppAdapter:
    """Factory the platform calls."""
    return OcppAdapter(context, settings or OcppSettings())


__all__ = ["OcppAdapter", "create_adapter", "parse_address"]
