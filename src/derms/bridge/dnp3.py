"""Translate core controls into IEEE 1815.2 (MESA-DER) DNP3 controls.

MESA-DER analog outputs carry signed 32-bit *transmission* integers; the engineering value
is ``transmission * multiplier + offset`` with the multiplier and offset taken from the
point map (IEEE 1815.2 clause 5.5, :mod:`derms.adapters.dnp3.points`). Each setpoint is
written to its analog output and the matching mode enabled with a latch-on CROB, as the
profile's function descriptions require (e.g. DWMX: AO 87 ``WLimPct`` then BO 17
``DWMX.Mod``). Quantisation to the multiplier is recorded as a :class:`PrecisionLoss`; a
value outside the profile's minimum/maximum raises :class:`LimitViolation`. The status
point each output mirrors to (``assoc_ai``/``assoc_bi``) is returned for read-back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dnp3.core.enums import ControlCode

from derms.adapters.base import NativeCommand, PrecisionLoss
from derms.adapters.dnp3.adapter import Dnp3Command
from derms.adapters.dnp3.codec import AnalogOutput, AnalogVariation, Crob
from derms.adapters.dnp3.master import OperateMode, ValueKind
from derms.adapters.dnp3.points import (
    AO_AGC_W,
    AO_CHARGE_DISCHARGE_PCT,
    AO_CHARGE_DISCHARGE_W,
    AO_PF_GEN,
    AO_VAR_TARGET,
    AO_WLIM_PCT,
    AO_WLIM_W,
    BO_AGC_ENABLE,
    BO_CHARGE_DISCHARGE_ENABLE,
    BO_CONNECT,
    BO_PF_ABSORBING,
    BO_PF_ENABLE,
    BO_VAR_ENABLE,
    BO_WLIM_ENABLE,
    PointKind,
    PointMap,
    mesa_der_map,
)
from derms.core.controls import (
    ActivePowerLimit,
    ActivePowerTarget,
    ChargeDischarge,
    Connect,
    FixedActivePower,
    FixedPowerFactor,
    FixedReactivePower,
    GenerationLimit,
)
from derms.core.der import Der
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation

_UNITS = {AO_WLIM_PCT: "%", AO_CHARGE_DISCHARGE_PCT: "%", AO_PF_GEN: "pf", AO_VAR_TARGET: "var"}


@dataclass
class _Builder:
    der: Der
    points: PointMap
    analogs: list[AnalogOutput] = field(default_factory=list)
    crobs: list[Crob] = field(default_factory=list)
    losses: list[PrecisionLoss] = field(default_factory=list)
    verify: list[tuple[ValueKind, int, float]] = field(default_factory=list)
    revert: list[Crob] = field(default_factory=list)

    def analog(self, uid: str, value: float) -> None:
        point = self.points.get(PointKind.ANALOG_OUTPUT, uid)
        try:
            raw = point.to_transmission(value)
        except ValueError as exc:
            raise LimitViolation(self.der.id, f"DNP3 {exc}") from exc
        delivered = point.to_engineering(raw)
        if abs(delivered - value) > 1e-9 * max(1.0, abs(value)):
            self.losses.append(PrecisionLoss(uid, value, delivered, _UNITS.get(uid, point.units or "")))
        self.analogs.append(AnalogOutput(point.index, raw, AnalogVariation.INT32))
        if point.associated and point.associated.startswith("AI"):
            self.verify.append((ValueKind.ANALOG_INPUT, int(point.associated[2:]), float(raw)))

    def latch(self, uid: str, on: bool, *, revert: bool = False) -> None:
        """Latch a binary output; with ``revert`` the opposite latch ends the window."""
        point = self.points.get(PointKind.BINARY_OUTPUT, uid)
        self.crobs.append(Crob(point.index, _code(on)))
        self.verify.append((ValueKind.BINARY_OUTPUT, point.index, 1.0 if on else 0.0))
        if revert:
            self.revert.append(Crob(point.index, _code(not on)))


def _code(on: bool) -> int:
    return int(ControlCode.LATCH_ON if on else ControlCode.LATCH_OFF)


class Dnp3Translator:
    """MESA-DER translator for plant controllers reached over DNP3."""

    protocol = "dnp3"

    def __init__(
        self,
        points: PointMap | None = None,
        mode: OperateMode = OperateMode.SELECT_BEFORE_OPERATE,
        verify: bool = True,
    ) -> None:
        self.points = points or mesa_der_map()
        self.mode = mode
        self.verify = verify

    def translate(self, der: Der, setpoint: Setpoint, command_id: str) -> NativeCommand:
        b = _Builder(der, self.points)
        match setpoint.control:
            case ActivePowerLimit(pct=pct):
                b.analog(AO_WLIM_PCT, pct)
                b.latch(BO_WLIM_ENABLE, True, revert=True)
            case GenerationLimit(w=w):
                b.analog(AO_WLIM_W, w)
                b.latch(BO_WLIM_ENABLE, True, revert=True)
            case ActivePowerTarget(w=w):
                b.analog(AO_AGC_W, w)
                b.latch(BO_AGC_ENABLE, True, revert=True)
            case ChargeDischarge(w=w):
                b.analog(AO_CHARGE_DISCHARGE_W, w)
                b.latch(BO_CHARGE_DISCHARGE_ENABLE, True, revert=True)
            case FixedActivePower(pct=pct):
                b.analog(AO_CHARGE_DISCHARGE_PCT, pct)
                b.latch(BO_CHARGE_DISCHARGE_ENABLE, True, revert=True)
            case FixedReactivePower(var=var):
                b.analog(AO_VAR_TARGET, var)
                b.latch(BO_VAR_ENABLE, True, revert=True)
            case FixedPowerFactor(pf=pf, absorbing=absorbing):
                b.analog(AO_PF_GEN, pf)
                b.latch(BO_PF_ABSORBING, absorbing)
                b.latch(BO_PF_ENABLE, True, revert=True)
            case Connect(connected=connected):
                b.latch(BO_CONNECT, connected, revert=not connected)
            case other:
                raise LimitViolation(der.id, f"DNP3 MESA-DER translator cannot carry {other.kind}")
        payload = Dnp3Command(
            crobs=tuple(b.crobs),
            analogs=tuple(b.analogs),
            mode=self.mode,
            verify=tuple(b.verify) if self.verify else (),
            revert=tuple(b.revert),
        )
        return NativeCommand(
            command_id=command_id,
            der_id=der.id,
            protocol=self.protocol,
            payload=payload,
            start=setpoint.start,
            end=setpoint.end,
            losses=tuple(b.losses),
            notes=(f"MESA-DER points from {self.points.source}",),
        )
