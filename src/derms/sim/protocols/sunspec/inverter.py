"""A simulated SunSpec DER: one pymodbus server holding one device's register image.

The image carries the legacy inverter models (1 common, 103 three-phase inverter, 120
nameplate, 121 settings, 123 immediate controls, 124 storage, 126 volt-var) and the IEEE
1547 models (701 measurements, 702 capacity, 704 AC controls, 705 volt-var, 713 storage
capacity, 802 battery). Each Modbus read first steps a small device model from the live
control registers, so what a master wrote shows up in what it next reads; writes to
read-only points are refused by pymodbus (exception 2) and out-of-range control values with
exception 3 (illegal data value).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from derms.adapters.sunspec.models import ModelBlock, Point, decode_raw, encode_raw
from derms.core.clock import Clock
from derms.sim.protocols.sunspec.image import build_image

log = logging.getLogger(__name__)

_WRITE_FUNCTIONS = {6, 16}


class DevicePhysics(Protocol):
    """What the register image needs from the device behind it."""

    w_rated: float
    va_rated: float
    var_rated: float
    wh_rated: float
    w: float
    var: float
    soc: float
    v: float
    hz: float
    energy_wh: float

    @property
    def is_storage(self) -> bool: ...

    def step(self, dt_s: float, limit_pct: float, pf: float | None, storage_w: float | None) -> None: ...


@dataclass(slots=True)
class DeviceModel:
    """The physical device behind the registers (kept small; ``available_w`` is the PV resource)."""

    w_rated: float
    va_rated: float
    var_rated: float
    available_w: float = 0.0
    wh_rated: float = 0.0
    soc: float = 0.5
    v: float = 240.0
    hz: float = 60.0
    w: float = 0.0
    var: float = 0.0
    energy_wh: float = 0.0

    @property
    def is_storage(self) -> bool:
        return self.wh_rated > 0

    def step(self, dt_s: float, limit_pct: float, pf: float | None, storage_w: float | None) -> None:
        """Advance ``dt_s`` seconds under the given controls (IEEE 1547-2018 4.6.2 limit, 5.3.2 fixed
        PF; a negative ``pf`` absorbs reactive power)."""
        cap = self.w_rated * limit_pct / 100.0
        if self.is_storage:
            target = storage_w if storage_w is not None else 0.0
            if target < 0 and self.soc >= 1.0:
                target = 0.0
            if target > 0 and self.soc <= 0.0:
                target = 0.0
            self.w = max(-self.w_rated, min(cap, target))
            self.soc = min(1.0, max(0.0, self.soc - self.w * dt_s / 3600.0 / self.wh_rated))
        else:
            self.w = max(0.0, min(self.available_w, cap))
        if pf is not None and 0 < abs(pf) < 1:
            q = abs(self.w) * math.tan(math.acos(abs(pf)))
            self.var = -min(q, self.var_rated) if pf < 0 else min(q, self.var_rated)
        else:
            self.var = 0.0
        self.energy_wh += max(self.w, 0.0) * dt_s / 3600.0


def pv_inverter(
    serial: str, w_rated: float = 10_000.0, available_w: float = 8_000.0
) -> tuple[DeviceModel, list]:
    """A PV inverter: its model and its SunSpec model list (raw values)."""
    device = DeviceModel(w_rated=w_rated, va_rated=w_rated, var_rated=0.44 * w_rated, available_w=available_w)
    return device, model_list(serial, device)


def battery_inverter(
    serial: str, w_rated: float = 5_000.0, wh_rated: float = 13_500.0
) -> tuple[DeviceModel, list]:
    """A storage inverter with models 124, 713 and 802 added."""
    device = DeviceModel(w_rated=w_rated, va_rated=w_rated, var_rated=0.44 * w_rated, wh_rated=wh_rated)
    return device, model_list(serial, device)


def model_list(serial: str, device: DevicePhysics) -> list:
    """The SunSpec models (raw values) of a device with ``device``'s ratings."""
    w = int(device.w_rated)
    models: list = [
        (
            1,
            {
                "Mn": "derms",
                "Md": "sim-storage" if device.is_storage else "sim-pv",
                "Vr": "1.0",
                "SN": serial,
                "DA": 1,
            },
        ),
        (
            103,
            {
                "A_SF": -2,
                "V_SF": -1,
                "W_SF": 0,
                "Hz_SF": -2,
                "VA_SF": 0,
                "VAr_SF": 0,
                "PF_SF": -1,
                "WH_SF": 0,
                "DCA_SF": -2,
                "DCV_SF": -1,
                "DCW_SF": 0,
                "Tmp_SF": -1,
                "St": 4,
                "Evt1": 0,
            },
        ),
        (
            120,
            {
                "DERTyp": 82 if device.is_storage else 4,
                "WRtg": w,
                "WRtg_SF": 0,
                "VARtg": int(device.va_rated),
                "VARtg_SF": 0,
                "VArRtgQ1": int(device.var_rated),
                "VArRtgQ2": int(device.var_rated),
                "VArRtgQ3": -int(device.var_rated),
                "VArRtgQ4": -int(device.var_rated),
                "VArRtg_SF": 0,
                "ARtg": int(device.va_rated / 240 * 10),
                "ARtg_SF": -1,
                "PFRtgQ1": -800,
                "PFRtgQ2": -800,
                "PFRtgQ3": 800,
                "PFRtgQ4": 800,
                "PFRtg_SF": -3,
                "WHRtg": int(device.wh_rated),
                "WHRtg_SF": 0,
                "AhrRtg_SF": 0,
                "MaxChaRte": w,
                "MaxChaRte_SF": 0,
                "MaxDisChaRte": w,
                "MaxDisChaRte_SF": 0,
            },
        ),
        (
            121,
            {
                "WMax": w,
                "VRef": 2400,
                "VRefOfs": 0,
                "VMax": 2640,
                "VMin": 2110,
                "VAMax": int(device.va_rated),
                "WMax_SF": 0,
                "VRef_SF": -1,
                "VRefOfs_SF": -1,
                "VMinMax_SF": -1,
                "VAMax_SF": 0,
            },
        ),
        (
            123,
            {
                "Conn": 1,
                "WMaxLimPct": 1000,
                "WMaxLim_Ena": 0,
                "OutPFSet": 1000,
                "OutPFSet_Ena": 0,
                "VArPct_Mod": 0,
                "VArPct_Ena": 0,
                "WMaxLimPct_SF": -1,
                "OutPFSet_SF": -3,
                "VArPct_SF": 0,
            },
        ),
        (
            126,
            {
                "ActCrv": 1,
                "ModEna": 0,
                "NCrv": 1,
                "NPt": 4,
                "V_SF": -1,
                "DeptRef_SF": -1,
                "RmpIncDec_SF": 0,
                "curve[0].ActPt": 4,
                "curve[0].DeptRef": 2,
                "curve[0].V1": 920,
                "curve[0].VAr1": 300,
                "curve[0].V2": 980,
                "curve[0].VAr2": 0,
                "curve[0].V3": 1020,
                "curve[0].VAr3": 0,
                "curve[0].V4": 1080,
                "curve[0].VAr4": -300,
            },
        ),
        (
            701,
            {
                "ACType": 3,
                "St": 2,
                "InvSt": 2,
                "ConnSt": 1,
                "Alrm": 0,
                "A_SF": -2,
                "V_SF": -1,
                "Hz_SF": -3,
                "W_SF": 0,
                "PF_SF": -3,
                "VA_SF": 0,
                "Var_SF": 0,
                "TotWh_SF": 0,
                "TotVarh_SF": 0,
                "Tmp_SF": 0,
            },
        ),
        (
            702,
            {
                "WMaxRtg": w,
                "WOvrExtRtg": w,
                "WOvrExtRtgPF": 1000,
                "WUndExtRtg": w,
                "WUndExtRtgPF": 1000,
                "VAMaxRtg": int(device.va_rated),
                "VarMaxInjRtg": int(device.var_rated),
                "VarMaxAbsRtg": int(device.var_rated),
                "WChaRteMaxRtg": w if device.is_storage else 0,
                "WDisChaRteMaxRtg": w if device.is_storage else 0,
                "VNomRtg": 240,
                "VMaxRtg": 264,
                "VMinRtg": 211,
                "PFOvrExtRtg": 800,
                "PFUndExtRtg": 800,
                "WMax": w,
                "VAMax": int(device.va_rated),
                "VarMaxInj": int(device.var_rated),
                "VarMaxAbs": int(device.var_rated),
                "VNom": 240,
                "W_SF": 0,
                "PF_SF": -3,
                "VA_SF": 0,
                "Var_SF": 0,
                "V_SF": 0,
                "A_SF": 0,
                "S_SF": 0,
            },
        ),
        (
            704,
            {
                "PFWInjEna": 0,
                "PFWInj.PF": 1000,
                "PFWInj.Ext": 0,
                "WMaxLimPctEna": 0,
                "WMaxLimPct": 10000,
                "WSetEna": 0,
                "VarSetEna": 0,
                "PF_SF": -3,
                "WMaxLimPct_SF": -2,
                "WSet_SF": 0,
                "WSetPct_SF": -2,
                "VarSet_SF": 0,
                "VarSetPct_SF": -2,
            },
        ),
        (
            705,
            {
                "Ena": 0,
                "AdptCrvReq": 0,
                "AdptCrvRslt": 0,
                "NPt": 4,
                "NCrv": 2,
                "V_SF": -2,
                "DeptRef_SF": -2,
                "RspTms_SF": 0,
                **_crv705(0, 1),
                **_crv705(1, 0),
            },
        ),
    ]
    if device.is_storage:
        models += [
            (
                124,
                {
                    "WChaMax": w,
                    "WChaGra": 100,
                    "WDisChaGra": 100,
                    "StorCtl_Mod": 0,
                    "ChaState": 500,
                    "ChaSt": 3,
                    "OutWRte": 0,
                    "InWRte": 0,
                    "ChaGriSet": 1,
                    "WChaMax_SF": 0,
                    "WChaDisChaGra_SF": 0,
                    "VAChaMax_SF": 0,
                    "MinRsvPct_SF": -1,
                    "ChaState_SF": -1,
                    "StorAval_SF": 0,
                    "InBatV_SF": -1,
                    "InOutWRte_SF": -1,
                },
            ),
            (
                713,
                {
                    "WHRtg": int(device.wh_rated),
                    "WHAvail": int(device.wh_rated / 2),
                    "SoC": 5000,
                    "SoH": 10000,
                    "Sta": 1,
                    "WH_SF": 0,
                    "Pct_SF": -2,
                },
            ),
            (
                802,
                {
                    "AHRtg": int(device.wh_rated / 400),
                    "WHRtg": int(device.wh_rated),
                    "WChaRteMax": w,
                    "WDisChaRteMax": w,
                    "SoCMax": 1000,
                    "SoCMin": 50,
                    "SoC": 500,
                    "ChaSt": 3,
                    "LocRemCtl": 1,
                    "Typ": 4,
                    "State": 2,
                    "V": 4000,
                    "W": 0,
                    "Evt1": 0,
                    "Evt2": 0,
                    "AHRtg_SF": 0,
                    "WHRtg_SF": 0,
                    "WChaDisChaMax_SF": 0,
                    "DisChaRte_SF": 0,
                    "SoC_SF": -1,
                    "DoD_SF": 0,
                    "SoH_SF": 0,
                    "V_SF": -1,
                    "CellV_SF": -3,
                    "A_SF": -1,
                    "AMax_SF": 0,
                    "W_SF": 0,
                },
            ),
        ]
    return models


def _crv705(index: int, read_only: int) -> dict[str, int]:
    """A 4-point volt-var curve (IEEE 1547-2018 Table 8, category B defaults)."""
    pts = ((92, 44), (98, 0), (102, 0), (108, -44))
    raw: dict[str, int] = {f"Crv[{index}].ActPt": 4, f"Crv[{index}].DeptRef": 1, f"Crv[{index}].Pri": 1,
                           f"Crv[{index}].VRef": 10000, f"Crv[{index}].ReadOnly": read_only}  # fmt: skip
    for i, (v, q) in enumerate(pts):
        raw[f"Crv[{index}].Pt[{i}].V"] = v * 100
        raw[f"Crv[{index}].Pt[{i}].Var"] = q * 100
    return raw


class SunSpecDeviceServer:
    """A Modbus TCP server (pymodbus) for one simulated SunSpec device at unit ``device_id``."""

    def __init__(
        self,
        device: DevicePhysics,
        models: list,
        clock: Clock,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        device_id: int = 1,
        base: int = 40000,
    ) -> None:
        self.device = device
        self.clock = clock
        self.registers, self.blocks = build_image(models, base)
        self.base = base
        self._last = clock.now()
        self._live: list[int] = []
        simdata = self._simdata()
        self.server = ModbusTcpServer(
            SimDevice(id=device_id, simdata=simdata, action=self._action), address=(host, port)
        )

    def _simdata(self) -> list[SimData]:
        """One SimData per run of registers with the same access, so pymodbus refuses writes to read-only points."""
        writable = [False] * len(self.registers)
        for block in self.blocks.values():
            for point in block.points.values():
                if point.defn.writable:
                    for i in range(point.defn.size):
                        writable[point.address - self.base + i] = True
        runs: list[SimData] = []
        start = 0
        for i in range(1, len(self.registers) + 1):
            if i == len(self.registers) or writable[i] != writable[start]:
                runs.append(SimData(address=self.base + start, values=self.registers[start:i],
                                    datatype=DataType.REGISTERS, readonly=not writable[start]))  # fmt: skip
                start = i
        return runs

    @property
    def port(self) -> int:
        transport = self.server.transport
        if transport is None:
            raise RuntimeError("server not listening")
        return int(transport.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def start(self) -> None:
        await self.server.listen()

    async def stop(self) -> None:
        await self.server.shutdown()

    # live register access
    def _point(self, model_id: int, path: str) -> Point | None:
        block: ModelBlock | None = self.blocks.get(model_id)
        return block.points.get(path) if block else None

    def get(self, model_id: int, path: str) -> float | int | str | None:
        point = self._point(model_id, path)
        if point is None:
            return None
        offset = point.address - self.base
        raw = decode_raw(point.defn, self._live[offset : offset + point.defn.size])
        if raw is None or isinstance(raw, str) or not point.sf:
            return raw
        return raw * 10.0**point.sf

    def set(self, model_id: int, path: str, value: float | int | str) -> None:
        point = self._point(model_id, path)
        if point is None:
            return
        raw = round(value / 10.0**point.sf) if point.sf and not isinstance(value, str) else value
        if isinstance(raw, float) and point.defn.type != "float32":
            raw = round(raw)
        offset = point.address - self.base
        self._live[offset : offset + point.defn.size] = encode_raw(point.defn, raw, path)

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self._live = registers
        if function_code in _WRITE_FUNCTIONS and values is not None:
            return self._check_write(address, [int(v) for v in values])
        self.refresh()
        return None

    def _check_write(self, address: int, values: list[int]) -> ExcCodes | None:
        """Refuse control values outside their ranges (IEEE 1547 / SunSpec point ranges)."""
        for model_id, path, low, high in (
            (123, "WMaxLimPct", 0.0, 100.0), (704, "WMaxLimPct", 0.0, 100.0),
            (704, "PFWInj.PF", 0.0, 1.0), (124, "InWRte", -100.0, 100.0), (124, "OutWRte", -100.0, 100.0),
        ):  # fmt: skip
            point = self._point(model_id, path)
            if point is None or not address <= point.address < address + len(values):
                continue
            offset = point.address - address
            raw = decode_raw(point.defn, values[offset : offset + point.defn.size])
            if raw is None or isinstance(raw, str):
                continue
            value = raw * 10.0 ** (point.sf or 0)
            if not low <= value <= high:
                log.warning(
                    "refused write of %s %s = %s (outside [%s, %s])", model_id, path, value, low, high
                )
                return ExcCodes.ILLEGAL_VALUE
        return None

    def _controls(self) -> tuple[float, float | None, float | None]:
        limit = 100.0
        if self.get(704, "WMaxLimPctEna") == 1:
            limit = float(self.get(704, "WMaxLimPct") or 100.0)
        elif self.get(123, "WMaxLim_Ena") == 1:
            limit = float(self.get(123, "WMaxLimPct") or 100.0)
        pf = None
        if self.get(704, "PFWInjEna") == 1:
            pf = float(self.get(704, "PFWInj.PF") or 1.0) * (-1 if self.get(704, "PFWInj.Ext") == 1 else 1)
        elif self.get(123, "OutPFSet_Ena") == 1:
            pf = float(self.get(123, "OutPFSet") or 1.0)
        storage_w = None
        if self.device.is_storage:
            mode = int(self.get(124, "StorCtl_Mod") or 0)
            w_cha_max = float(self.get(124, "WChaMax") or self.device.w_rated)
            if mode & 0b10:  # discharge
                storage_w = w_cha_max * float(self.get(124, "OutWRte") or 0.0) / 100.0
            elif mode & 0b01:  # charge
                storage_w = -w_cha_max * float(self.get(124, "InWRte") or 0.0) / 100.0
        return limit, pf, storage_w

    def refresh(self) -> None:
        """Step the device model to now and write its measurements into the image."""
        now = self.clock.now()
        dt = max(0.0, (now - self._last).total_seconds())
        self._last = now
        device = self.device
        device.step(dt, *self._controls())
        va = math.hypot(device.w, device.var)
        pf = abs(device.w) / va if va else 1.0
        amps = va / device.v
        for model_id, path, value in (
            (103, "W", device.w), (103, "VAr", device.var), (103, "VA", va), (103, "PF", pf * 100.0),
            (103, "A", amps), (103, "PhVphA", device.v), (103, "Hz", device.hz), (103, "WH", device.energy_wh),
            (701, "W", device.w), (701, "Var", device.var), (701, "VA", va), (701, "PF", pf), (701, "A", amps),
            (701, "LNV", device.v), (701, "Hz", device.hz), (701, "TotWhInj", device.energy_wh),
        ):  # fmt: skip
            self.set(model_id, path, value)
        if device.is_storage:
            self.set(124, "ChaState", device.soc * 100.0)
            self.set(713, "SoC", device.soc * 100.0)
            self.set(713, "WHAvail", device.soc * device.wh_rated)
            self.set(802, "SoC", device.soc * 100.0)
            self.set(802, "W", device.w)
            self.set(802, "ChaSt", 4 if device.w > 0 else 3 if device.w < 0 else 1)
