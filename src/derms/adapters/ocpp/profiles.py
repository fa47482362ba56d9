"""OCPP smart-charging vocabulary, independent of the protocol version.

A :class:`ChargingProfile` carries everything OCPP 1.6 (clause 3.13, ``ChargingProfile``
type 7.8) and OCPP 2.0.1 (use cases K01–K08, ``ChargingProfileType`` 2.10) share: purpose,
kind, stack level, recurrency, validity and one schedule of periods in W or A with an
optional number of phases. :func:`to_v16` and :func:`to_v201` render it as the ``ocpp``
library's typed payload objects; :func:`profile_from_wire` reads either version back.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ocpp.v16 import datatypes as dt16
from ocpp.v16 import enums as en16
from ocpp.v201 import datatypes as dt201
from ocpp.v201 import enums as en201

from derms.core.clock import utc


class ProfilePurpose(StrEnum):
    """ChargingProfilePurposeType. ``STATION_MAX`` is ChargePointMaxProfile in 1.6 and
    ChargingStationMaxProfile in 2.0.1; it applies to the whole station (connector/EVSE 0)."""

    STATION_MAX = "StationMax"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class ProfileKind(StrEnum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class RateUnit(StrEnum):
    W = "W"
    A = "A"


_PURPOSE_V16 = {
    ProfilePurpose.STATION_MAX: "ChargePointMaxProfile",
    ProfilePurpose.TX_DEFAULT: "TxDefaultProfile",
    ProfilePurpose.TX: "TxProfile",
}
_PURPOSE_V201 = {**_PURPOSE_V16, ProfilePurpose.STATION_MAX: "ChargingStationMaxProfile"}
_PURPOSE_FROM_WIRE = {
    "ChargePointMaxProfile": ProfilePurpose.STATION_MAX,
    "ChargingStationMaxProfile": ProfilePurpose.STATION_MAX,
    "TxDefaultProfile": ProfilePurpose.TX_DEFAULT,
    "TxProfile": ProfilePurpose.TX,
}


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """ChargingSchedulePeriod: from ``start_s`` seconds after the schedule start, at most
    ``limit`` (W, or A per phase) using ``phases`` phases (``None``: the station's default, 3)."""

    start_s: int
    limit: float
    phases: int | None = None

    def __post_init__(self) -> None:
        if self.start_s < 0:
            raise ValueError("startPeriod must be >= 0")
        if not self.limit >= 0:
            raise ValueError(f"limit {self.limit} must be >= 0")
        if self.phases is not None and self.phases not in (1, 2, 3):
            raise ValueError("numberPhases must be 1, 2 or 3")


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """One charging profile. ``start`` is startSchedule (required for Absolute with a fixed
    start and for Recurring); ``duration_s`` bounds the schedule; ``transaction_id`` binds a
    TxProfile to a transaction (an integer in 1.6, a string in 2.0.1)."""

    id: int
    stack_level: int
    purpose: ProfilePurpose
    periods: tuple[SchedulePeriod, ...]
    unit: RateUnit = RateUnit.W
    kind: ProfileKind = ProfileKind.ABSOLUTE
    start: datetime | None = None
    duration_s: int | None = None
    transaction_id: str | None = None
    recurrency: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    min_rate: float | None = None
    schedule_id: int = 1

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.id <= 0:
            problems.append("chargingProfileId must be > 0")
        if self.stack_level < 0:
            problems.append("stackLevel must be >= 0")
        if not self.periods:
            problems.append("a schedule needs at least one period")
        elif self.periods[0].start_s != 0:
            problems.append("the first period must start at 0")
        starts = [p.start_s for p in self.periods]
        if any(b <= a for a, b in itertools.pairwise(starts)):
            problems.append("period starts must increase")
        if self.kind is ProfileKind.RECURRING and (
            self.recurrency not in ("Daily", "Weekly") or not self.start
        ):
            problems.append("a Recurring profile needs recurrency Daily/Weekly and a start")
        if self.kind is not ProfileKind.RECURRING and self.recurrency is not None:
            problems.append("recurrency is only allowed for Recurring profiles")
        if self.purpose is not ProfilePurpose.TX and self.transaction_id is not None:
            problems.append("only a TxProfile may name a transaction")
        if self.purpose is ProfilePurpose.STATION_MAX and self.kind is ProfileKind.RELATIVE:
            problems.append("a station maximum profile cannot be Relative")
        if self.duration_s is not None and self.duration_s <= 0:
            problems.append("duration must be > 0")
        if problems:
            raise ValueError("; ".join(problems))
        for name in ("start", "valid_from", "valid_to"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value))


@dataclass(frozen=True, slots=True)
class SetProfileCommand:
    """The native command the bridge produces: install ``profile`` on ``evse_id`` (connector
    id in 1.6; 0 means the whole station)."""

    evse_id: int
    profile: ChargingProfile

    def __post_init__(self) -> None:
        if self.evse_id < 0:
            raise ValueError("evse/connector id must be >= 0")
        if self.profile.purpose is ProfilePurpose.STATION_MAX and self.evse_id != 0:
            raise ValueError("a station maximum profile can only be set on evse/connector 0")


@dataclass(frozen=True, slots=True)
class ClearProfileCommand:
    """ClearChargingProfile: by id, or by any combination of evse, purpose and stack level."""

    profile_id: int | None = None
    evse_id: int | None = None
    purpose: ProfilePurpose | None = None
    stack_level: int | None = None


@dataclass(frozen=True, slots=True)
class CompositeSchedule:
    """A station's answer to GetCompositeSchedule."""

    evse_id: int
    start: datetime
    duration_s: int
    unit: RateUnit
    periods: tuple[SchedulePeriod, ...] = field(default_factory=tuple)

    def limit_at(self, offset_s: float) -> float | None:
        """The limit in force ``offset_s`` seconds after ``start`` (``None`` past the end)."""
        if offset_s < 0 or offset_s >= self.duration_s:
            return None
        current = None
        for period in self.periods:
            if period.start_s <= offset_s:
                current = period.limit
        return current


def iso(value: datetime) -> str:
    """OCPP dateTime: RFC 3339 in UTC with a ``Z``."""
    return utc(value).isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def to_v16(profile: ChargingProfile) -> dt16.ChargingProfile:
    """OCPP 1.6 ``csChargingProfiles`` (clause 7.8)."""
    if profile.transaction_id is not None and not profile.transaction_id.isdigit():
        raise ValueError(f"OCPP 1.6 transaction ids are integers, not {profile.transaction_id!r}")
    return dt16.ChargingProfile(
        charging_profile_id=profile.id,
        stack_level=profile.stack_level,
        charging_profile_purpose=en16.ChargingProfilePurposeType(_PURPOSE_V16[profile.purpose]),
        charging_profile_kind=en16.ChargingProfileKindType(profile.kind.value),
        charging_schedule=dt16.ChargingSchedule(
            charging_rate_unit=en16.ChargingRateUnitType(profile.unit.value),
            charging_schedule_period=[
                dt16.ChargingSchedulePeriod(start_period=p.start_s, limit=p.limit, number_phases=p.phases)
                for p in profile.periods
            ],
            duration=profile.duration_s,
            start_schedule=iso(profile.start) if profile.start else None,
            min_charging_rate=profile.min_rate,
        ),
        transaction_id=int(profile.transaction_id) if profile.transaction_id is not None else None,
        recurrency_kind=en16.RecurrencyKind(profile.recurrency) if profile.recurrency else None,
        valid_from=iso(profile.valid_from) if profile.valid_from else None,
        valid_to=iso(profile.valid_to) if profile.valid_to else None,
    )


def to_v201(profile: ChargingProfile) -> dt201.ChargingProfileType:
    """OCPP 2.0.1 ``chargingProfile`` (ChargingProfileType, one schedule)."""
    return dt201.ChargingProfileType(
        id=profile.id,
        stack_level=profile.stack_level,
        charging_profile_purpose=en201.ChargingProfilePurposeEnumType(_PURPOSE_V201[profile.purpose]),
        charging_profile_kind=en201.ChargingProfileKindEnumType(profile.kind.value),
        charging_schedule=[
            dt201.ChargingScheduleType(
                id=profile.schedule_id,
                charging_rate_unit=en201.ChargingRateUnitEnumType(profile.unit.value),
                charging_schedule_period=[
                    dt201.ChargingSchedulePeriodType(
                        start_period=p.start_s, limit=p.limit, number_phases=p.phases
                    )
                    for p in profile.periods
                ],
                start_schedule=iso(profile.start) if profile.start else None,
                duration=profile.duration_s,
                min_charging_rate=profile.min_rate,
            )
        ],
        valid_from=iso(profile.valid_from) if profile.valid_from else None,
        valid_to=iso(profile.valid_to) if profile.valid_to else None,
        transaction_id=profile.transaction_id,
        recurrency_kind=en201.RecurrencyKindEnumType(profile.recurrency) if profile.recurrency else None,
    )


def _num(value: Any) -> float:
    """OCPP 1.6 numbers arrive from the ``ocpp`` library as ``Decimal``."""
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))


def _periods(raw: list[dict[str, Any]]) -> tuple[SchedulePeriod, ...]:
    return tuple(
        SchedulePeriod(
            start_s=int(p["start_period"]),
            limit=_num(p["limit"]),
            phases=int(p["number_phases"]) if p.get("number_phases") is not None else None,
        )
        for p in raw
    )


def profile_from_wire(data: dict[str, Any]) -> ChargingProfile:
    """Read a snake_case profile as the ``ocpp`` library hands it to a handler (1.6 or 2.0.1)."""
    schedule = data["charging_schedule"]
    if isinstance(schedule, list):  # 2.0.1 carries one to three schedules; we use the first
        schedule = schedule[0]
    ident = data.get("charging_profile_id", data.get("id"))
    tx = data.get("transaction_id")
    return ChargingProfile(
        id=int(ident),
        stack_level=int(data["stack_level"]),
        purpose=_PURPOSE_FROM_WIRE[data["charging_profile_purpose"]],
        kind=ProfileKind(data["charging_profile_kind"]),
        unit=RateUnit(schedule["charging_rate_unit"]),
        periods=_periods(schedule["charging_schedule_period"]),
        start=parse_iso(schedule["start_schedule"]) if schedule.get("start_schedule") else None,
        duration_s=int(schedule["duration"]) if schedule.get("duration") is not None else None,
        min_rate=_num(schedule["min_charging_rate"])
        if schedule.get("min_charging_rate") is not None
        else None,
        transaction_id=str(tx) if tx is not None else None,
        recurrency=data.get("recurrency_kind"),
        valid_from=parse_iso(data["valid_from"]) if data.get("valid_from") else None,
        valid_to=parse_iso(data["valid_to"]) if data.get("valid_to") else None,
        schedule_id=int(schedule.get("id", 1)),
    )


def composite_from_v16(connector_id: int, schedule_start: str, schedule: dict[str, Any]) -> CompositeSchedule:
    """GetCompositeSchedule.conf (1.6): ``schedule`` is the snake_case chargingSchedule."""
    start = parse_iso(schedule.get("start_schedule") or schedule_start)
    return CompositeSchedule(
        evse_id=connector_id,
        start=start,
        duration_s=int(schedule.get("duration") or 0),
        unit=RateUnit(schedule["charging_rate_unit"]),
        periods=_periods(schedule["charging_schedule_period"]),
    )


def composite_from_v201(schedule: dict[str, Any]) -> CompositeSchedule:
    """GetCompositeScheduleResponse (2.0.1): ``schedule`` is the snake_case CompositeScheduleType."""
    return CompositeSchedule(
        evse_id=int(schedule["evse_id"]),
        start=parse_iso(schedule["schedule_start"]),
        duration_s=int(schedule["duration"]),
        unit=RateUnit(schedule["charging_rate_unit"]),
        periods=_periods(schedule["charging_schedule_period"]),
    )
