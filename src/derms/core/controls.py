"""The control vocabulary: the union of what the grid needs, not the intersection of protocols.

Each control is a small frozen dataclass. Adapters declare which :class:`ControlKind` they
support natively; the bridge (``derms.bridge``) turns a control into the adapter's native
command. Powers follow the derms sign convention (positive = injection) unless a field
says it is a magnitude.

Curves follow IEEE 1547-2018 clause 5.3 (volt-var), 5.4 (watt-power factor), 4.6.2 (volt-watt)
and 6.5.2.7 (frequency-droop); curve ``y`` values are given per unit of the device's rating
as the standard defines them.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class ControlKind(StrEnum):
    ACTIVE_POWER_LIMIT = "active_power_limit"
    ACTIVE_POWER_TARGET = "active_power_target"
    FIXED_ACTIVE_POWER = "fixed_active_power"
    FIXED_REACTIVE_POWER = "fixed_reactive_power"
    FIXED_POWER_FACTOR = "fixed_power_factor"
    VOLT_VAR = "volt_var"
    VOLT_WATT = "volt_watt"
    FREQ_WATT = "freq_watt"
    WATT_PF = "watt_pf"
    CONNECT = "connect"
    ENERGIZE = "energize"
    CHARGE_DISCHARGE = "charge_discharge"
    IMPORT_EXPORT_LIMIT = "import_export_limit"
    GENERATION_LIMIT = "generation_limit"
    LOAD_LIMIT = "load_limit"
    LOAD_SHED = "load_shed"
    LOAD_UP = "load_up"
    PRICE_SIGNAL = "price_signal"
    CHARGING_LIMIT = "charging_limit"


@dataclass(frozen=True, slots=True)
class _ControlBase:
    kind: ClassVar[ControlKind]


@dataclass(frozen=True, slots=True)
class ActivePowerLimit(_ControlBase):
    """Cap active power output at ``pct`` of nameplate ``w_max`` (IEEE 1547-2018 4.6.2 limit)."""

    kind: ClassVar[ControlKind] = ControlKind.ACTIVE_POWER_LIMIT
    pct: float

    def __post_init__(self) -> None:
        _in_range("pct", self.pct, 0.0, 100.0)


@dataclass(frozen=True, slots=True)
class ActivePowerTarget(_ControlBase):
    """Hold net active power at ``w`` [W] (positive injects, negative consumes)."""

    kind: ClassVar[ControlKind] = ControlKind.ACTIVE_POWER_TARGET
    w: float


@dataclass(frozen=True, slots=True)
class FixedActivePower(_ControlBase):
    """Fixed active power as a signed percentage of ``w_max`` (2030.5 opModFixedW)."""

    kind: ClassVar[ControlKind] = ControlKind.FIXED_ACTIVE_POWER
    pct: float

    def __post_init__(self) -> None:
        _in_range("pct", self.pct, -100.0, 100.0)


@dataclass(frozen=True, slots=True)
class FixedReactivePower(_ControlBase):
    """Fixed reactive power ``var`` [var] (positive injects; IEEE 1547-2018 5.3.2 constant var)."""

    kind: ClassVar[ControlKind] = ControlKind.FIXED_REACTIVE_POWER
    var: float


@dataclass(frozen=True, slots=True)
class FixedPowerFactor(_ControlBase):
    """Constant power factor (IEEE 1547-2018 5.3.2); ``absorbing`` means under-excited."""

    kind: ClassVar[ControlKind] = ControlKind.FIXED_POWER_FACTOR
    pf: float
    absorbing: bool = True

    def __post_init__(self) -> None:
        _in_range("pf", self.pf, 0.0, 1.0, low_open=True)


@dataclass(frozen=True, slots=True)
class CurvePoint:
    x: float
    y: float


def _check_curve(points: tuple[CurvePoint, ...], name: str) -> None:
    if not 2 <= len(points) <= 10:
        raise ValueError(f"{name} needs 2 to 10 points (IEEE 2030.5 DERCurve allows at most 10)")
    xs = [p.x for p in points]
    if any(b < a for a, b in itertools.pairwise(xs)):
        raise ValueError(f"{name} x values must be non-decreasing")


@dataclass(frozen=True, slots=True)
class VoltVarCurve(_ControlBase):
    """Volt-var: ``x`` voltage in per unit of V_nom, ``y`` reactive power in per unit of var rating."""

    kind: ClassVar[ControlKind] = ControlKind.VOLT_VAR
    points: tuple[CurvePoint, ...]
    v_ref_pu: float = 1.0
    open_loop_response_time_s: float = 5.0

    def __post_init__(self) -> None:
        _check_curve(self.points, "volt-var curve")


@dataclass(frozen=True, slots=True)
class VoltWattCurve(_ControlBase):
    """Volt-watt: ``x`` voltage in per unit, ``y`` active power limit in per unit of ``w_max``."""

    kind: ClassVar[ControlKind] = ControlKind.VOLT_WATT
    points: tuple[CurvePoint, ...]
    open_loop_response_time_s: float = 10.0

    def __post_init__(self) -> None:
        _check_curve(self.points, "volt-watt curve")


@dataclass(frozen=True, slots=True)
class FreqWattCurve(_ControlBase):
    """Frequency-watt: ``x`` frequency [Hz], ``y`` active power in per unit of ``w_max``."""

    kind: ClassVar[ControlKind] = ControlKind.FREQ_WATT
    points: tuple[CurvePoint, ...]

    def __post_init__(self) -> None:
        _check_curve(self.points, "frequency-watt curve")


@dataclass(frozen=True, slots=True)
class WattPowerFactorCurve(_ControlBase):
    """Watt-power factor: ``x`` active power in per unit, ``y`` power factor (signed: <0 absorbing)."""

    kind: ClassVar[ControlKind] = ControlKind.WATT_PF
    points: tuple[CurvePoint, ...]

    def __post_init__(self) -> None:
        _check_curve(self.points, "watt-power factor curve")


@dataclass(frozen=True, slots=True)
class Connect(_ControlBase):
    """Connect to or disconnect from the grid (2030.5 opModConnect)."""

    kind: ClassVar[ControlKind] = ControlKind.CONNECT
    connected: bool


@dataclass(frozen=True, slots=True)
class Energize(_ControlBase):
    """Permit or forbid energizing the grid (2030.5 opModEnergize)."""

    kind: ClassVar[ControlKind] = ControlKind.ENERGIZE
    energize: bool


@dataclass(frozen=True, slots=True)
class ChargeDischarge(_ControlBase):
    """Storage set point ``w`` [W]: positive discharges, negative charges."""

    kind: ClassVar[ControlKind] = ControlKind.CHARGE_DISCHARGE
    w: float


@dataclass(frozen=True, slots=True)
class ImportExportLimit(_ControlBase):
    """Site import/export limits at the connection point [W] (CSIP-AUS opModImpLimW/opModExpLimW)."""

    kind: ClassVar[ControlKind] = ControlKind.IMPORT_EXPORT_LIMIT
    import_w: float | None = None
    export_w: float | None = None

    def __post_init__(self) -> None:
        if self.import_w is None and self.export_w is None:
            raise ValueError("an import/export limit needs import_w or export_w")
        for name in ("import_w", "export_w"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} is a magnitude and must be >= 0")


@dataclass(frozen=True, slots=True)
class GenerationLimit(_ControlBase):
    """Limit on gross generation [W] (CSIP-AUS opModGenLimW)."""

    kind: ClassVar[ControlKind] = ControlKind.GENERATION_LIMIT
    w: float

    def __post_init__(self) -> None:
        _in_range("w", self.w, 0.0, float("inf"))


@dataclass(frozen=True, slots=True)
class LoadLimit(_ControlBase):
    """Limit on gross load [W] (CSIP-AUS opModLoadLimW)."""

    kind: ClassVar[ControlKind] = ControlKind.LOAD_LIMIT
    w: float

    def __post_init__(self) -> None:
        _in_range("w", self.w, 0.0, float("inf"))


@dataclass(frozen=True, slots=True)
class LoadShed(_ControlBase):
    """Shed load. ``level`` 1..3 (1 light, 3 critical/grid emergency), after CTA-2045 and OpenADR SIMPLE."""

    kind: ClassVar[ControlKind] = ControlKind.LOAD_SHED
    level: int = 1

    def __post_init__(self) -> None:
        _in_range("level", self.level, 0, 3)


@dataclass(frozen=True, slots=True)
class LoadUp(_ControlBase):
    """Consume more now (pre-cool, heat the tank); ``level`` 1 load up, 2 advanced load up."""

    kind: ClassVar[ControlKind] = ControlKind.LOAD_UP
    level: int = 1

    def __post_init__(self) -> None:
        _in_range("level", self.level, 1, 2)


@dataclass(frozen=True, slots=True)
class PriceSignal(_ControlBase):
    """Energy price the device may respond to [currency per kWh]."""

    kind: ClassVar[ControlKind] = ControlKind.PRICE_SIGNAL
    price_per_kwh: float
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class ChargingLimit(_ControlBase):
    """EV charging limit, in watts or in amps per phase (OCPP ChargingRateUnit W or A)."""

    kind: ClassVar[ControlKind] = ControlKind.CHARGING_LIMIT
    limit: float
    unit: str = "W"
    phases: int | None = None

    def __post_init__(self) -> None:
        if self.unit not in ("W", "A"):
            raise ValueError("charging limit unit must be 'W' or 'A'")
        _in_range("limit", self.limit, 0.0, float("inf"))


type Control = (
    ActivePowerLimit
    | ActivePowerTarget
    | FixedActivePower
    | FixedReactivePower
    | FixedPowerFactor
    | VoltVarCurve
    | VoltWattCurve
    | FreqWattCurve
    | WattPowerFactorCurve
    | Connect
    | Energize
    | ChargeDischarge
    | ImportExportLimit
    | GenerationLimit
    | LoadLimit
    | LoadShed
    | LoadUp
    | PriceSignal
    | ChargingLimit
)

CONTROL_TYPES: dict[ControlKind, type[_ControlBase]] = {
    cls.kind: cls
    for cls in (
        ActivePowerLimit,
        ActivePowerTarget,
        FixedActivePower,
        FixedReactivePower,
        FixedPowerFactor,
        VoltVarCurve,
        VoltWattCurve,
        FreqWattCurve,
        WattPowerFactorCurve,
        Connect,
        Energize,
        ChargeDischarge,
        ImportExportLimit,
        GenerationLimit,
        LoadLimit,
        LoadShed,
        LoadUp,
        PriceSignal,
        ChargingLimit,
    )
}


def control_to_dict(control: Control) -> dict[str, Any]:
    """Serialise a control to a JSON-ready dict with its ``kind``."""
    data = dataclasses.asdict(control)
    if "points" in data:
        data["points"] = [[p["x"], p["y"]] for p in data["points"]]
    return {"kind": str(control.kind), **data}


def control_from_dict(data: dict[str, Any]) -> Control:
    """Inverse of :func:`control_to_dict`; raises ``ValueError`` on an unknown kind or bad field."""
    fields = dict(data)
    try:
        kind = ControlKind(fields.pop("kind"))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"unknown or missing control kind: {data.get('kind')!r}") from exc
    cls = CONTROL_TYPES[kind]
    if "points" in fields:
        fields["points"] = tuple(CurvePoint(float(x), float(y)) for x, y in fields["points"])
    try:
        return cls(**fields)  # type: ignore[return-value]
    except TypeError as exc:
        raise ValueError(f"bad fields for {kind}: {exc}") from exc


def _in_range(name: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    if value != value:  # NaN
        raise ValueError(f"{name} is NaN")
    if (value <= low if low_open else value < low) or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name}={value} outside {bracket}{low}, {high}]")
