"""One connected charge point per OCPP version, on the ``ocpp`` library's ChargePoint.

Handlers follow OCPP 1.6 clause 4 (operations initiated by the charge point) and OCPP 2.0.1
use cases B01 (boot), G01 (status), J01 (meter values), E01–E07 (TransactionEvent), K15
(NotifyEVChargingNeeds, 2.0.1 only) and C01 (authorize). Each forwards what it learnt to a
:class:`StationObserver`; smart-charging calls (K01 SetChargingProfile, K10
ClearChargingProfile, K08 GetCompositeSchedule) are the ``set_profile``/``clear_profiles``/
``composite_schedule`` methods.

The receive loop survives any bad frame: it is logged and the connection carries on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16 import enums as en16
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import datatypes as dt201
from ocpp.v201 import enums as en201
from websockets.exceptions import ConnectionClosed

from derms.adapters.ocpp.profiles import (
    ClearProfileCommand,
    CompositeSchedule,
    RateUnit,
    SetProfileCommand,
    composite_from_v16,
    composite_from_v201,
    iso,
    to_v16,
    to_v201,
)
from derms.core.clock import Clock

log = logging.getLogger(__name__)

_PURPOSE_WIRE = {
    "v16": {"StationMax": "ChargePointMaxProfile"},
    "v201": {"StationMax": "ChargingStationMaxProfile"},
}


class StationObserver(Protocol):
    """What the CSMS tells the adapter about a station."""

    async def on_boot(self, station: Station, info: Mapping[str, Any]) -> None: ...
    async def on_status(self, station: Station, evse_id: int, status: str) -> None: ...
    async def on_meter(self, station: Station, evse_id: int, meter_values: list[dict[str, Any]]) -> None: ...
    async def on_transaction(self, station: Station, evse_id: int, tx_id: str, event: str) -> None: ...
    async def on_charging_needs(self, station: Station, evse_id: int, needs: Mapping[str, Any]) -> bool:
        """The EV's charging needs (2.0.1 K15); True when the CSMS will schedule the EVSE."""
        ...


class Station(Protocol):
    """A connected charge point, whatever its OCPP version."""

    id: str
    version: str
    booted: bool

    async def set_profile(self, command: SetProfileCommand) -> tuple[str, str]: ...
    async def clear_profiles(self, command: ClearProfileCommand) -> str: ...
    async def composite_schedule(
        self, evse_id: int, duration_s: int, unit: RateUnit | None = None
    ) -> CompositeSchedule | None: ...
    async def serve(self) -> None: ...


def _plain(value: Any) -> Any:
    """Decimal (how the library hands 1.6 numbers over) to float, recursively."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _Common:
    """Receive loop and bookkeeping shared by both versions."""

    version: str
    id: str
    _connection: Any
    logger: logging.Logger

    def __init__(
        self,
        station_id: str,
        connection: Any,
        observer: StationObserver,
        clock: Clock,
        *,
        heartbeat_s: int,
        response_timeout: float,
    ) -> None:
        super().__init__(station_id, connection, response_timeout=response_timeout, logger=log)  # type: ignore[call-arg]
        self.observer = observer
        self.clock = clock
        self.heartbeat_s = heartbeat_s
        self.booted = False
        self.frames_rejected = 0
        self.closed = asyncio.Event()

    async def call(
        self, payload: Any, suppress: bool = True, unique_id: Any = None, skip_schema_validation: bool = False
    ) -> Any:
        """The library's call, failing at once (ConnectionError) if the connection ends first."""
        request = asyncio.ensure_future(
            super().call(
                payload, suppress=suppress, unique_id=unique_id, skip_schema_validation=skip_schema_validation
            )  # type: ignore[misc]
        )
        closed = asyncio.ensure_future(self.closed.wait())
        done, _ = await asyncio.wait({request, closed}, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if request in done:
            return request.result()
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
        raise ConnectionError(f"charge point {self.id} disconnected before answering")

    async def serve(self) -> None:
        """Receive until the peer goes away; a frame that cannot be handled is logged and skipped."""
        try:
            await self._receive()
        finally:
            self.closed.set()

    async def _receive(self) -> None:
        while True:
            try:
                message = await self._connection.recv()
            except ConnectionClosed as exc:
                log.info("charge point %s disconnected: %s", self.id, exc)
                return
            try:
                await self.route_message(message)  # type: ignore[attr-defined]
            except ConnectionClosed:
                log.info("charge point %s disconnected while we answered", self.id)
                return
            except Exception:
                self.frames_rejected += 1
                log.exception("charge point %s: frame not handled: %.200r", self.id, message)

    def _now(self) -> str:
        return iso(self.clock.now())

    async def composite_schedule(
        self, evse_id: int, duration_s: int, unit: RateUnit | None = None
    ) -> CompositeSchedule | None:
        """GetCompositeSchedule (1.6 clause 5.7, 2.0.1 K08): the merged limit the station will
        apply over ``duration_s``; None when it refuses or has no schedule."""
        result = await self.call(
            self._composite_request(evse_id, duration_s, unit.value if unit else None), suppress=False
        )
        return self._composite_result(result, evse_id) if result.status == "Accepted" else None

    def _composite_request(self, evse_id: int, duration_s: int, unit: str | None) -> Any:
        raise NotImplementedError

    def _composite_result(self, result: Any, evse_id: int) -> CompositeSchedule | None:
        raise NotImplementedError


class Station16(_Common, ChargePoint16):
    """OCPP 1.6J session."""

    version = "1.6"
    _tx_ids = itertools.count(1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tx_connector: dict[int, int] = {}

    @on(en16.Action.boot_notification)
    async def _boot(self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any) -> Any:
        self.booted = True
        await self.observer.on_boot(
            self, {"vendor": charge_point_vendor, "model": charge_point_model, **_plain(kwargs)}
        )
        return result16.BootNotification(
            current_time=self._now(), interval=self.heartbeat_s, status=en16.RegistrationStatus.accepted
        )

    @on(en16.Action.heartbeat)
    async def _heartbeat(self) -> Any:
        return result16.Heartbeat(current_time=self._now())

    @on(en16.Action.status_notification)
    async def _status(self, connector_id: int, error_code: str, status: str, **kwargs: Any) -> Any:
        await self.observer.on_status(self, connector_id, status)
        return result16.StatusNotification()

    @on(en16.Action.authorize)
    async def _authorize(self, id_tag: str) -> Any:
        return result16.Authorize(id_tag_info={"status": en16.AuthorizationStatus.accepted})

    @on(en16.Action.start_transaction)
    async def _start_tx(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kw: Any
    ) -> Any:
        tx_id = next(self._tx_ids)
        self._tx_connector[tx_id] = connector_id
        await self.observer.on_transaction(self, connector_id, str(tx_id), "Started")
        return result16.StartTransaction(
            transaction_id=tx_id, id_tag_info={"status": en16.AuthorizationStatus.accepted}
        )

    @on(en16.Action.stop_transaction)
    async def _stop_tx(self, meter_stop: int, timestamp: str, transaction_id: int, **kw: Any) -> Any:
        connector = self._tx_connector.pop(transaction_id, 0)
        if kw.get("transaction_data"):
            await self.observer.on_meter(self, connector, _plain(kw["transaction_data"]))
        await self.observer.on_transaction(self, connector, str(transaction_id), "Ended")
        return result16.StopTransaction()

    @on(en16.Action.meter_values)
    async def _meter(self, connector_id: int, meter_value: list[dict[str, Any]], **kw: Any) -> Any:
        await self.observer.on_meter(self, connector_id, _plain(meter_value))
        return result16.MeterValues()

    @on(en16.Action.data_transfer)
    async def _data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        return result16.DataTransfer(status=en16.DataTransferStatus.unknown_vendor_id)

    async def set_profile(self, command: SetProfileCommand) -> tuple[str, str]:
        result = await self.call(
            call16.SetChargingProfile(
                connector_id=command.evse_id, cs_charging_profiles=to_v16(command.profile)
            ),
            suppress=False,
        )
        return str(result.status), ""

    async def clear_profiles(self, command: ClearProfileCommand) -> str:
        purpose = command.purpose and _PURPOSE_WIRE["v16"].get(command.purpose.value, command.purpose.value)
        result = await self.call(
            call16.ClearChargingProfile(
                id=command.profile_id,
                connector_id=command.evse_id,
                charging_profile_purpose=purpose,
                stack_level=command.stack_level,
            ),
            suppress=False,
        )
        return str(result.status)

    def _composite_request(self, evse_id: int, duration_s: int, unit: str | None) -> Any:
        return call16.GetCompositeSchedule(connector_id=evse_id, duration=duration_s, charging_rate_unit=unit)

    def _composite_result(self, result: Any, evse_id: int) -> CompositeSchedule | None:
        if not result.charging_schedule:
            return None
        return composite_from_v16(
            int(result.connector_id or evse_id),
            result.schedule_start or self._now(),
            _plain(result.charging_schedule),
        )


class Station201(_Common, ChargePoint201):
    """OCPP 2.0.1 session."""

    version = "2.0.1"

    @on(en201.Action.boot_notification)
    async def _boot(self, charging_station: dict[str, Any], reason: str, **kw: Any) -> Any:
        self.booted = True
        await self.observer.on_boot(
            self,
            {
                "vendor": charging_station.get("vendor_name"),
                "model": charging_station.get("model"),
                "reason": reason,
                **{k: v for k, v in charging_station.items() if k not in ("vendor_name", "model")},
            },
        )
        return result201.BootNotification(
            current_time=self._now(),
            interval=self.heartbeat_s,
            status=en201.RegistrationStatusEnumType.accepted,
        )

    @on(en201.Action.heartbeat)
    async def _heartbeat(self) -> Any:
        return result201.Heartbeat(current_time=self._now())

    @on(en201.Action.status_notification)
    async def _status(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **kw: Any
    ) -> Any:
        await self.observer.on_status(self, evse_id, connector_status)
        return result201.StatusNotification()

    @on(en201.Action.authorize)
    async def _authorize(self, id_token: dict[str, Any], **kw: Any) -> Any:
        return result201.Authorize(id_token_info={"status": en201.AuthorizationStatusEnumType.accepted})

    @on(en201.Action.transaction_event)
    async def _transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        **kw: Any,
    ) -> Any:
        evse_id = int((kw.get("evse") or {}).get("id", 0))
        if kw.get("meter_value"):
            await self.observer.on_meter(self, evse_id, kw["meter_value"])
        await self.observer.on_transaction(self, evse_id, transaction_info["transaction_id"], event_type)
        return result201.TransactionEvent()

    @on(en201.Action.meter_values)
    async def _meter(self, evse_id: int, meter_value: list[dict[str, Any]], **kw: Any) -> Any:
        await self.observer.on_meter(self, evse_id, meter_value)
        return result201.MeterValues()

    @on(en201.Action.notify_ev_charging_needs)
    async def _charging_needs(self, charging_needs: dict[str, Any], evse_id: int, **kw: Any) -> Any:
        scheduled = await self.observer.on_charging_needs(self, evse_id, charging_needs)
        status = en201.NotifyEVChargingNeedsStatusEnumType
        return result201.NotifyEVChargingNeeds(status=status.accepted if scheduled else status.rejected)

    @on(en201.Action.notify_event)
    async def _notify_event(self, generated_at: str, seq_no: int, event_data: list[Any], **kw: Any) -> Any:
        return result201.NotifyEvent()

    @on(en201.Action.data_transfer)
    async def _data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        return result201.DataTransfer(status=en201.DataTransferStatusEnumType.unknown_vendor_id)

    async def set_profile(self, command: SetProfileCommand) -> tuple[str, str]:
        result = await self.call(
            call201.SetChargingProfile(evse_id=command.evse_id, charging_profile=to_v201(command.profile)),
            suppress=False,
        )
        return str(result.status), str((result.status_info or {}).get("reason_code", ""))

    async def clear_profiles(self, command: ClearProfileCommand) -> str:
        criteria = None
        if command.evse_id is not None or command.purpose is not None or command.stack_level is not None:
            purpose = command.purpose and _PURPOSE_WIRE["v201"].get(
                command.purpose.value, command.purpose.value
            )
            criteria = dt201.ClearChargingProfileType(
                evse_id=command.evse_id, charging_profile_purpose=purpose, stack_level=command.stack_level
            )
        result = await self.call(
            call201.ClearChargingProfile(
                charging_profile_id=command.profile_id, charging_profile_criteria=criteria
            ),
            suppress=False,
        )
        return str(result.status)

    def _composite_request(self, evse_id: int, duration_s: int, unit: str | None) -> Any:
        return call201.GetCompositeSchedule(duration=duration_s, evse_id=evse_id, charging_rate_unit=unit)

    def _composite_result(self, result: Any, evse_id: int) -> CompositeSchedule | None:
        return composite_from_v201(result.schedule) if result.schedule else None


class Station21(Station201):
    """OCPP 2.1 session. The use cases served here (B01, G01, J01, E01–E07, K01, K08, K10) keep
    their 2.0.1 message shapes in 2.1, so the 2.0.1 handlers serve them; every message is
    validated against the 2.1 schemas."""

    version = "2.1"
    _call = call21
    _call_result = result21
    _ocpp_version = "2.1"


STATION_CLASSES: dict[str, type[Station16] | type[Station201]] = {
    "ocpp1.6": Station16,
    "ocpp2.0.1": Station201,
    "ocpp2.1": Station21,
}
