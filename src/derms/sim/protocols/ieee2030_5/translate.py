"""2030.5 control modes → core controls a simulated device obeys (IEEE 2030.5-2018 10.10).

The device sits alone behind its connection point, so the CSIP-AUS site limits become
device limits: export ``opModExpLimW`` caps generation and import ``opModImpLimW`` caps
consumption. Percentages arrive in hundredths (PerCent), powers as value × 10^multiplier,
curves with per-axis multipliers; curve axes in percent are turned into per unit.
"""

from __future__ import annotations

from envoy_schema.server.schema.sep2.der import DERControlBase

from derms.adapters.ieee2030_5.mappers import scaled
from derms.adapters.ieee2030_5.schema import DERCurveXml
from derms.core.controls import (
    ActivePowerLimit,
    ActivePowerTarget,
    ChargeDischarge,
    Connect,
    Control,
    CurvePoint,
    Energize,
    FixedActivePower,
    FixedPowerFactor,
    FixedReactivePower,
    GenerationLimit,
    LoadLimit,
    VoltVarCurve,
    VoltWattCurve,
)

CURVE_MODES = {"opModVoltVar": 11, "opModVoltWatt": 12}
"""Curve modes the simulated device models (curveType per 2030.5-2018 DERCurveType)."""


def _power(value: object) -> float:
    return scaled(value.value, value.multiplier)  # type: ignore[attr-defined]


def _curve_points(curve: DERCurveXml) -> tuple[CurvePoint, ...]:
    """Curve in per unit: x and y are percent (of nominal voltage / of setMaxVar or setMaxW)."""
    return tuple(
        CurvePoint(scaled(p.xvalue, curve.xMultiplier) / 100.0, scaled(p.yvalue, curve.yMultiplier) / 100.0)
        for p in curve.CurveData
    )


def controls_for(
    base: DERControlBase, curves: dict[str, DERCurveXml], *, storage: bool
) -> dict[str, Control]:
    """Core controls for each opMod* of ``base``; curve links are resolved through ``curves`` (href → curve)."""
    out: dict[str, Control] = {}
    if base.opModConnect is not None:
        out["opModConnect"] = Connect(base.opModConnect)
    if base.opModEnergize is not None:
        out["opModEnergize"] = Energize(base.opModEnergize)
    if base.opModMaxLimW is not None:
        out["opModMaxLimW"] = ActivePowerLimit(base.opModMaxLimW / 100.0)
    if base.opModFixedW is not None:
        out["opModFixedW"] = FixedActivePower(base.opModFixedW / 100.0)
    if base.opModTargetW is not None:
        w = _power(base.opModTargetW)
        out["opModTargetW"] = ChargeDischarge(w) if storage else ActivePowerTarget(w)
    if base.opModTargetVar is not None:
        out["opModTargetVar"] = FixedReactivePower(_power(base.opModTargetVar))
    if base.opModFixedPFInjectW is not None:
        pf = base.opModFixedPFInjectW
        out["opModFixedPFInjectW"] = FixedPowerFactor(
            scaled(pf.displacement, pf.multiplier), absorbing=bool(pf.excitation)
        )
    if base.opModExpLimW is not None:
        out["opModExpLimW"] = GenerationLimit(max(0.0, _power(base.opModExpLimW)))
    if base.opModGenLimW is not None:
        out["opModGenLimW"] = GenerationLimit(max(0.0, _power(base.opModGenLimW)))
    if base.opModImpLimW is not None:
        out["opModImpLimW"] = LoadLimit(max(0.0, _power(base.opModImpLimW)))
    if base.opModLoadLimW is not None:
        out["opModLoadLimW"] = LoadLimit(max(0.0, _power(base.opModLoadLimW)))
    for mode in CURVE_MODES:
        link = getattr(base, mode)
        curve = curves.get(link.href) if link is not None else None
        if curve is not None:
            points = _curve_points(curve)
            out[mode] = VoltVarCurve(points) if mode == "opModVoltVar" else VoltWattCurve(points)
    return out
