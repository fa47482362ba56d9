"""Setpoint → 2030.5 DERControl (IEEE 2030.5-2018 10.10, CSIP-AUS DOE limits).

Value encodings and the precision they lose:

* powers are ``value × 10^multiplier`` with an Int16 value (ActivePower, ReactivePower): the
  smallest multiplier ≥ 0 that fits is chosen, so a watt-level request above 32,767 W is
  rounded to tens of watts, and the loss is reported;
* percentages are hundredths of a percent (PerCent/SignedPerCent);
* power factor is ``displacement × 10^-3`` with an excitation flag;
* curve points are Int32 values with a common multiplier per axis: per-unit curve axes are
  carried as percent with ``multiplier`` −2 (hundredths of a percent).
"""

from __future__ import annotations

from derms.adapters.base import NativeCommand, PrecisionLoss
from derms.adapters.ieee2030_5.native import CurveSpec, DerControlCommand
from derms.adapters.ieee2030_5.schema import (
    ActivePower,
    DERControlBase,
    PowerFactorWithExcitation,
    ReactivePower,
)
from derms.core.controls import (
    ActivePowerLimit,
    ActivePowerTarget,
    ChargeDischarge,
    Connect,
    Energize,
    FixedActivePower,
    FixedPowerFactor,
    FixedReactivePower,
    FreqWattCurve,
    GenerationLimit,
    ImportExportLimit,
    LoadLimit,
    VoltVarCurve,
    VoltWattCurve,
    WattPowerFactorCurve,
)
from derms.core.der import Der
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation

INT16_MAX = 32_767

# DERCurveType (2030.5-2018) and DERUnitRefType
CURVE_FREQ_WATT, CURVE_VOLT_VAR, CURVE_VOLT_WATT, CURVE_WATT_PF = 0, 11, 12, 13
REF_SET_MAX_W, REF_SET_MAX_VAR, REF_SET_EFFECTIVE_V = 1, 2, 4


def encode_power(field: str, watts: float, losses: list[PrecisionLoss], unit: str = "W") -> tuple[int, int]:
    """(value, multiplier) with |value| ≤ 32,767; records any rounding in ``losses``."""
    for multiplier in range(10):
        value = round(watts / 10**multiplier)
        if abs(value) <= INT16_MAX:
            delivered = value * 10.0**multiplier
            if abs(delivered - watts) > 1e-9:
                losses.append(PrecisionLoss(field, watts, delivered, unit))
            return value, multiplier
    raise ValueError(f"{field} {watts} {unit} is too large for 2030.5")


def encode_percent(field: str, pct: float, losses: list[PrecisionLoss]) -> int:
    """Hundredths of a percent (2030.5 PerCent/SignedPerCent)."""
    value = round(pct * 100)
    if abs(value / 100 - pct) > 1e-9:
        losses.append(PrecisionLoss(field, pct, value / 100, "%"))
    return value


class Ieee2030_5Translator:
    """Translator for DERs reached over 2030.5."""

    protocol = "ieee2030_5"

    def translate(self, der: Der, setpoint: Setpoint, command_id: str) -> NativeCommand:
        losses: list[PrecisionLoss] = []
        fields: dict[str, object] = {}
        curve: CurveSpec | None = None
        match setpoint.control:
            case ActivePowerLimit(pct=pct):
                fields["opModMaxLimW"] = encode_percent("opModMaxLimW", pct, losses)
            case FixedActivePower(pct=pct):
                fields["opModFixedW"] = encode_percent("opModFixedW", pct, losses)
            case ActivePowerTarget(w=w) | ChargeDischarge(w=w):
                value, mult = encode_power("opModTargetW", w, losses)
                fields["opModTargetW"] = ActivePower(value=value, multiplier=mult)
            case FixedReactivePower(var=var):
                value, mult = encode_power("opModTargetVar", var, losses, "var")
                fields["opModTargetVar"] = ReactivePower(value=value, multiplier=mult)
            case FixedPowerFactor(pf=pf, absorbing=absorbing):
                displacement = round(pf * 1000)
                if abs(displacement / 1000 - pf) > 1e-9:
                    losses.append(PrecisionLoss("opModFixedPFInjectW", pf, displacement / 1000, "pf"))
                fields["opModFixedPFInjectW"] = PowerFactorWithExcitation(
                    displacement=displacement, multiplier=-3, excitation=absorbing
                )
            case Connect(connected=connected):
                fields["opModConnect"] = connected
            case Energize(energize=energize):
                fields["opModEnergize"] = energize
            case ImportExportLimit(import_w=imp, export_w=exp):
                for name, watts in (("opModImpLimW", imp), ("opModExpLimW", exp)):
                    if watts is not None:
                        value, mult = encode_power(name, watts, losses)
                        fields[name] = ActivePower(value=value, multiplier=mult)
            case GenerationLimit(w=w):
                value, mult = encode_power("opModGenLimW", w, losses)
                fields["opModGenLimW"] = ActivePower(value=value, multiplier=mult)
            case LoadLimit(w=w):
                value, mult = encode_power("opModLoadLimW", w, losses)
                fields["opModLoadLimW"] = ActivePower(value=value, multiplier=mult)
            case VoltVarCurve(points=points, open_loop_response_time_s=olrt):
                curve = _curve(
                    "opModVoltVar", CURVE_VOLT_VAR, points, REF_SET_MAX_VAR, 100, 100, olrt, losses
                )
            case VoltWattCurve(points=points, open_loop_response_time_s=olrt):
                curve = _curve(
                    "opModVoltWatt", CURVE_VOLT_WATT, points, REF_SET_MAX_W, 100, 100, olrt, losses
                )
            case FreqWattCurve(points=points):
                curve = _curve("opModFreqWatt", CURVE_FREQ_WATT, points, REF_SET_MAX_W, 1, 100, None, losses)
            case WattPowerFactorCurve(points=points):
                curve = _watt_pf_curve(points, losses)
            case other:
                raise LimitViolation(der.id, f"2030.5 DER function set cannot carry {other.kind}")
        base = DERControlBase(**fields)  # type: ignore[arg-type]
        return NativeCommand(
            command_id=command_id,
            der_id=der.id,
            protocol=self.protocol,
            payload=DerControlCommand(base=base, curve=curve),
            start=setpoint.start,
            end=setpoint.end,
            losses=tuple(losses),
        )


def _curve(
    mode: str,
    curve_type: int,
    points: tuple,
    y_ref: int,
    x_scale: float,
    y_scale: float,
    olrt_s: float | None,
    losses: list[PrecisionLoss],
) -> CurveSpec:
    """Curve with x and y scaled (per unit → percent) and carried in hundredths (multiplier −2)."""
    encoded = []
    for i, point in enumerate(points):
        x, y = point.x * x_scale, point.y * y_scale
        ex, ey = round(x * 100) / 100, round(y * 100) / 100
        if abs(ex - x) > 1e-9:
            losses.append(PrecisionLoss(f"{mode}.x[{i}]", x, ex, "%" if x_scale == 100 else "Hz"))
        if abs(ey - y) > 1e-9:
            losses.append(PrecisionLoss(f"{mode}.y[{i}]", y, ey, "%"))
        encoded.append((ex, ey))
    return CurveSpec(
        mode=mode,
        curve_type=curve_type,
        points=tuple(encoded),
        y_ref_type=y_ref,
        x_multiplier=-2,
        y_multiplier=-2,
        open_loop_tms=None if olrt_s is None else round(olrt_s * 100),
    )


def _watt_pf_curve(points: tuple, losses: list[PrecisionLoss]) -> CurveSpec:
    """Watt-PF: x percent of setMaxW, y |pf| with excitation (negative pf = absorbing)."""
    spec = _curve("opModWattPF", CURVE_WATT_PF, tuple(points), REF_SET_MAX_W, 100, 1, None, losses)
    return CurveSpec(
        mode=spec.mode,
        curve_type=spec.curve_type,
        points=tuple((x, abs(y)) for x, y in spec.points),
        y_ref_type=spec.y_ref_type,
        x_multiplier=-2,
        y_multiplier=-2,
        excitation=tuple(p.y < 0 for p in points),
    )
