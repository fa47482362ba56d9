"""Translate core controls into OCPP charging profiles (W or A per phase, with a stack level).

A charging limit for an EVSE becomes a TxDefaultProfile on that EVSE (it governs the running
and any later transaction, OCPP 1.6 3.13.1; 2.0.1 K01); for a DER addressed as the whole
station (EVSE 0) it becomes a ChargePointMaxProfile/ChargingStationMaxProfile. The schedule
is Absolute from the setpoint's start (whole seconds) for its duration, at the translator's
stack level, so a newer dispatch at the same level replaces the older one (2.0.1 K01.FR.05).

Both versions carry limits with at most one decimal (1.6 schema ``multipleOf 0.1``; 2.0.1
ChargingSchedulePeriodType.limit), so values are rounded to 0.1 and the rounding recorded as
:class:`PrecisionLoss`; a watt request sent as amps is converted with the DER's nominal
voltage and phase count (P = U·I·phases) and its loss expressed in watts. Requests beyond the
charger's rating, with more phases than it has, or between zero and the IEC 61851-1 minimum
of 6 A raise :class:`LimitViolation`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

from derms.adapters.base import NativeCommand, PrecisionLoss
from derms.adapters.ocpp.adapter import parse_address
from derms.adapters.ocpp.profiles import (
    ChargingProfile,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
    SetProfileCommand,
)
from derms.core.controls import ActivePowerTarget, ChargingLimit, Control, LoadLimit
from derms.core.der import Der
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation

IEC_61851_MIN_A = 6.0
"""Lowest current an AC charger may signal to the vehicle, other than 0 (IEC 61851-1 Annex A)."""
LIMIT_STEP = 0.1


class OcppTranslator:
    """Translator for ``protocol == "ocpp"``.

    ``unit_for(der, control)`` picks the rate unit sent to a charger; by default the unit the
    control was given in (a ``LoadLimit`` or power target goes in watts).
    """

    protocol = "ocpp"

    def __init__(
        self, stack_level: int = 1, unit_for: Callable[[Der, Control], RateUnit] | None = None
    ) -> None:
        if stack_level < 0:
            raise ValueError("stack level must be >= 0")
        self.stack_level = stack_level
        self.unit_for = unit_for or _unit_of_request

    def translate(self, der: Der, setpoint: Setpoint, command_id: str) -> NativeCommand:
        _, evse_id = parse_address(der.address)
        requested_w, requested_a, phases = self._request(der, setpoint.control)
        unit = self.unit_for(der, setpoint.control)
        volts_phases = der.capabilities.v_nom * phases
        losses: list[PrecisionLoss] = []
        if unit is RateUnit.A:
            amps = requested_a if requested_a is not None else requested_w / volts_phases
            limit = _step(amps)
            if 0 < limit < IEC_61851_MIN_A:
                raise LimitViolation(
                    der.id, f"{limit:.1f} A per phase is below the IEC 61851-1 minimum of 6 A"
                )
            if requested_a is not None and limit != requested_a:
                losses.append(PrecisionLoss("limit", requested_a, limit, "A"))
            elif requested_a is None and not math.isclose(limit * volts_phases, requested_w):
                losses.append(PrecisionLoss("limit", requested_w, limit * volts_phases, "W"))
        else:
            limit = _step(requested_w)
            if limit != requested_w:
                losses.append(PrecisionLoss("limit", requested_w, limit, "W"))
        start = setpoint.start.replace(microsecond=0)
        notes: tuple[str, ...] = ()
        if start != setpoint.start:
            notes = (f"schedule start truncated to whole seconds ({start.isoformat()})",)
        duration = max(1, math.ceil((setpoint.end - start).total_seconds()))
        profile = ChargingProfile(
            id=zlib.crc32(command_id.encode()) % 0x7FFFFFFF + 1,
            stack_level=self.stack_level,
            purpose=ProfilePurpose.STATION_MAX if evse_id == 0 else ProfilePurpose.TX_DEFAULT,
            kind=ProfileKind.ABSOLUTE,
            unit=unit,
            periods=(SchedulePeriod(0, limit, phases if unit is RateUnit.A else None),),
            start=start,
            duration_s=duration,
        )
        return NativeCommand(
            command_id=command_id, der_id=der.id, protocol=self.protocol,
            payload=SetProfileCommand(evse_id, profile), start=setpoint.start, end=setpoint.end,
            losses=tuple(losses), notes=notes,
        )  # fmt: skip

    @staticmethod
    def _request(der: Der, control: Control) -> tuple[float, float | None, int]:
        """(watts, amps if requested in amps, phases) of a charging request, checked against the rating."""
        caps = der.capabilities
        phases = caps.phases
        amps: float | None = None
        match control:
            case ChargingLimit(limit=limit, unit="A", phases=requested_phases):
                phases = requested_phases or caps.phases
                amps = limit
                watts = limit * caps.v_nom * phases
            case ChargingLimit(limit=limit, phases=requested_phases):
                phases = requested_phases or caps.phases
                watts = limit
            case LoadLimit(w=w):
                watts = w
            case ActivePowerTarget(w=w) if w <= 0:
                watts = -w
            case ActivePowerTarget():
                raise LimitViolation(
                    der.id, "OCPP 1.6/2.0.1 charging profiles cannot ask a charger to discharge"
                )
            case _:
                raise LimitViolation(der.id, f"OCPP translation of {control.kind} is not supported")
        if phases > caps.phases:
            raise LimitViolation(der.id, f"{phases} phases requested; the charger has {caps.phases}")
        if caps.w_max_consume and watts > caps.w_max_consume + 1e-9:
            raise LimitViolation(
                der.id, f"{watts:.0f} W exceeds the charger rating {caps.w_max_consume:.0f} W"
            )
        return watts, amps, phases


def _step(value: float) -> float:
    return round(round(value / LIMIT_STEP) * LIMIT_STEP, 1)


def _unit_of_request(der: Der, control: Control) -> RateUnit:
    return RateUnit.A if isinstance(control, ChargingLimit) and control.unit == "A" else RateUnit.W
