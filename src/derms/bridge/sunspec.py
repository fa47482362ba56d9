"""Translate core controls into SunSpec point writes, scaled by the device's own scale factors.

Each engineering value becomes ``round(value / 10**sf)`` in the register (SunSpec Information
Model Specification clause 6.4); the difference from the request is recorded as a
:class:`PrecisionLoss`. The IEEE 1547 models are preferred (704 DERCtlAC, 705 DERVoltVar)
and the legacy ones used where a device has only those (123 immediate controls, 124 basic
storage). Controls are written value first, then the enable, so a device never enables a
stale value. Values the device cannot hold (beyond its ratings, more curve points than NPt, a
missing model) raise :class:`LimitViolation` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from derms.adapters.base import NativeCommand, PrecisionLoss
from derms.adapters.sunspec.commands import PointWrite, SunSpecWrite
from derms.adapters.sunspec.models import ModelBlock, SunSpecError
from derms.core.controls import (
    ActivePowerLimit,
    ChargeDischarge,
    Control,
    FixedPowerFactor,
    GenerationLimit,
    VoltVarCurve,
)
from derms.core.der import Der
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation

type DeviceMaps = Callable[[str], Mapping[int, list[ModelBlock]]]


class _Writes:
    def __init__(self, der: Der, models: Mapping[int, list[ModelBlock]]) -> None:
        self.der = der
        self.models = models
        self.writes: list[PointWrite] = []
        self.losses: list[PrecisionLoss] = []

    def block(self, *model_ids: int) -> ModelBlock:
        for model_id in model_ids:
            if self.models.get(model_id):
                return self.models[model_id][0]
        raise LimitViolation(self.der.id, f"device has none of SunSpec models {list(model_ids)}")

    def has(self, model_id: int) -> bool:
        return bool(self.models.get(model_id))

    def put(self, block: ModelBlock, path: str, value: float | int, unit: str = "") -> None:
        if path not in block.points:
            raise LimitViolation(self.der.id, f"model {block.model_id} has no point {path}")
        try:
            _, _, delivered = block.encode(path, value)
        except SunSpecError as exc:
            raise LimitViolation(self.der.id, f"model {block.model_id} {path}: {exc}") from exc
        if isinstance(delivered, int | float) and abs(float(delivered) - float(value)) > 1e-9:
            self.losses.append(
                PrecisionLoss(f"{block.model_id}.{path}", float(value), float(delivered), unit)
            )
        self.writes.append(PointWrite(block.model_id, path, value))


class SunSpecTranslator:
    """Translator for ``protocol == "sunspec"``. ``device_maps(der_id)`` returns the models
    the adapter has read from the device (see :meth:`SunSpecAdapter.device_map`)."""

    protocol = "sunspec"

    def __init__(self, device_maps: DeviceMaps) -> None:
        self.device_maps = device_maps

    def translate(self, der: Der, setpoint: Setpoint, command_id: str) -> NativeCommand:
        models = self.device_maps(der.id)
        if not models:
            raise LimitViolation(der.id, "device not discovered yet: its scale factors are unknown")
        out = _Writes(der, models)
        self._control(out, setpoint.control)
        return NativeCommand(
            command_id=command_id, der_id=der.id, protocol=self.protocol,
            payload=SunSpecWrite(tuple(out.writes)), start=setpoint.start, end=setpoint.end,
            losses=tuple(out.losses),
        )  # fmt: skip

    def _control(self, out: _Writes, control: Control) -> None:
        match control:
            case ActivePowerLimit(pct=pct):
                self._limit_pct(out, pct)
            case GenerationLimit(w=w):
                w_max = self._w_max(out)
                if w > w_max:
                    raise LimitViolation(out.der.id, f"generation limit {w:.0f} W exceeds WMax {w_max:.0f} W")
                self._limit_pct(out, 100.0 * w / w_max)
            case FixedPowerFactor(pf=pf, absorbing=absorbing):
                self._power_factor(out, pf, absorbing)
            case VoltVarCurve():
                self._volt_var(out, control)
            case ChargeDischarge(w=w):
                self._storage(out, w)
            case _:
                raise LimitViolation(out.der.id, f"SunSpec translation of {control.kind} is not supported")

    @staticmethod
    def _w_max(out: _Writes) -> float:
        for model_id, path in ((702, "WMax"), (702, "WMaxRtg"), (121, "WMax"), (120, "WRtg")):
            if out.has(model_id):
                value = out.block(model_id).value(path)
                if isinstance(value, int | float) and value > 0:
                    return float(value)
        if out.der.capabilities.w_max > 0:
            return out.der.capabilities.w_max
        raise LimitViolation(out.der.id, "device reports no WMax and the DER has no w_max")

    @staticmethod
    def _limit_pct(out: _Writes, pct: float) -> None:
        """IEEE 1547-2018 4.6.2 limit maximum active power: 704 WMaxLimPct or 123 WMaxLimPct."""
        if out.has(704):
            block = out.block(704)
            out.put(block, "WMaxLimPct", pct, "%")
            out.put(block, "WMaxLimPctEna", 1)
        else:
            block = out.block(123)
            out.put(block, "WMaxLimPct", pct, "%")
            out.put(block, "WMaxLim_Ena", 1)

    @staticmethod
    def _power_factor(out: _Writes, pf: float, absorbing: bool) -> None:
        """IEEE 1547-2018 5.3.2 constant power factor; 704 PFWInj (Ext 1 = under-excited) or 123 OutPFSet."""
        if out.has(704):
            block = out.block(704)
            out.put(block, "PFWInj.PF", pf, "pf")
            out.put(block, "PFWInj.Ext", 1 if absorbing else 0)
            out.put(block, "PFWInjEna", 1)
        else:
            block = out.block(123)
            out.put(block, "OutPFSet", -pf if absorbing else pf, "pf")
            out.put(block, "OutPFSet_Ena", 1)

    @staticmethod
    def _volt_var(out: _Writes, curve: VoltVarCurve) -> None:
        """IEEE 1547-2018 5.3.3 volt-var into the first writable curve of model 705; V in % of
        VRef and var in % of VarMax (DeptRef 1)."""
        block = out.block(705)
        n_pt = int(block.value("NPt") or 0)
        if len(curve.points) > n_pt:
            raise LimitViolation(out.der.id, f"curve has {len(curve.points)} points; the device holds {n_pt}")
        n_crv = int(block.value("NCrv") or 0)
        index = next((i for i in range(n_crv) if block.value(f"Crv[{i}].ReadOnly") != 1), None)
        if index is None:
            raise LimitViolation(out.der.id, "device has no writable volt-var curve")
        crv = f"Crv[{index}]"
        for i, point in enumerate(curve.points):
            out.put(block, f"{crv}.Pt[{i}].V", 100.0 * point.x, "%VRef")
            out.put(block, f"{crv}.Pt[{i}].Var", 100.0 * point.y, "%VarMax")
        out.put(block, f"{crv}.ActPt", len(curve.points))
        out.put(block, f"{crv}.DeptRef", 1)
        out.put(block, f"{crv}.VRef", 100.0 * curve.v_ref_pu, "%")
        out.put(block, "AdptCrvReq", index + 1)
        out.put(block, "Ena", 1)

    @staticmethod
    def _storage(out: _Writes, w: float) -> None:
        """Storage set point through model 124: OutWRte/InWRte in % of WChaMax with StorCtl_Mod bits."""
        block = out.block(124)
        w_cha_max = block.value("WChaMax")
        if not isinstance(w_cha_max, int | float) or w_cha_max <= 0:
            raise LimitViolation(out.der.id, "model 124 reports no WChaMax")
        if abs(w) > w_cha_max:
            raise LimitViolation(out.der.id, f"{abs(w):.0f} W exceeds WChaMax {w_cha_max:.0f} W")
        pct = 100.0 * abs(w) / w_cha_max
        if w > 0:
            out.put(block, "OutWRte", pct, "%WChaMax")
            out.put(block, "StorCtl_Mod", 0b10)
        elif w < 0:
            out.put(block, "InWRte", pct, "%WChaMax")
            out.put(block, "StorCtl_Mod", 0b01)
        else:
            out.put(block, "StorCtl_Mod", 0)
