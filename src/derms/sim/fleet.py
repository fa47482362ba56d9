"""The fleet simulator: N devices as columns, stepped on an injectable clock's time.

:class:`FleetSimulator` keeps one row per DER (power, status, active controls, expiry of
each control) and one physics model per DER kind holding that kind's rows
(:mod:`derms.sim.physics`). ``step(now)`` advances every model from the last step to
``now`` in sub-steps of at most ``max_substep_s``; ``apply`` applies a core control
within the device's limits; ``columns``/``samples`` report what an online device would
send. An offline device (dropped off communications and tripped) produces nothing and
reports nothing until it comes back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from derms.core.clock import utc
from derms.core.columns import TelemetryColumns, to_ms
from derms.core.controls import (
    ActivePowerLimit,
    ActivePowerTarget,
    ChargeDischarge,
    ChargingLimit,
    Connect,
    Control,
    CurvePoint,
    Energize,
    FixedActivePower,
    FixedPowerFactor,
    FixedReactivePower,
    GenerationLimit,
    LoadLimit,
    LoadShed,
    LoadUp,
    VoltVarCurve,
    VoltWattCurve,
)
from derms.core.der import Der, DerKind
from derms.core.device_state import STATE_FIELDS
from derms.core.errors import LimitViolation, NotFound, ValidationFailed
from derms.core.site import Site
from derms.core.telemetry import OperationalStatus, Telemetry
from derms.sim.builders import Model, build_model
from derms.sim.generate import generate_fleet
from derms.sim.physics import BatteryBank, CiLoads, EvChargers, Hvac, PvArrays, WaterHeaters
from derms.sim.physics.base import BoolArray, FloatArray
from derms.sim.physics.water_heater import CP_WATER
from derms.sim.supported import SUPPORTED_CONTROLS
from derms.sim.weather import Weather, default_weather

__all__ = ["SUPPORTED_CONTROLS", "FleetColumns", "FleetSimulator", "StatusChange", "generate_fleet"]


HVAC_OFFSET_K = 1.1
"""Thermostat set-point move per shed or load-up level [K] (2 °F, a common DR step)."""
WATER_SHED_K = 5.0
WATER_LOAD_UP_K = 4.0
BATTERY_SELF_SCHEDULE = ((10.0, 15.0, -0.5), (17.0, 21.0, 0.5))
"""Uncontrolled storage: (from local hour, to local hour, fraction of rating; + discharges)."""

# Control slots: a new control replaces the previous one in its slot.
POWER, LIMIT, LOAD_LIMIT, REACTIVE, VOLT_WATT, DEMAND, CONNECT, ENERGIZE = (
    "power",
    "limit",
    "load_limit",
    "reactive",
    "volt_watt",
    "demand",
    "connect",
    "energize",
)
_Q_NONE, _Q_FIXED, _Q_PF, _Q_VOLT_VAR = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class StatusChange:
    der_id: str
    online: bool
    detail: str


@dataclass(frozen=True, slots=True)
class FleetColumns:
    """Telemetry of the online devices at ``ts`` as columns; NaN where a device does not measure."""

    ts: datetime
    der_id: NDArray[np.str_]
    p_w: FloatArray
    q_var: FloatArray
    v_v: FloatArray
    f_hz: FloatArray
    soc: FloatArray
    status: NDArray[np.int8]
    available: BoolArray

    def __len__(self) -> int:
        return len(self.der_id)

    def to_telemetry_columns(self, index: Mapping[str, int]) -> TelemetryColumns:
        """The core's columnar batch, with ``index`` mapping DER id to its dense index."""
        try:
            der_idx = np.fromiter((index[i] for i in self.der_id.tolist()), np.int32, len(self))
        except KeyError as exc:
            raise NotFound("der", exc.args[0]) from None
        return TelemetryColumns.from_arrays(
            der_idx,
            np.full(len(self), to_ms(self.ts), np.int64),
            p_w=self.p_w,
            q_var=self.q_var,
            v_v=self.v_v,
            f_hz=self.f_hz,
            soc=self.soc,
            status=self.status,
            available=self.available,
        )

    def samples(self) -> list[Telemetry]:
        soc = [None if math.isnan(s) else s for s in self.soc.tolist()]
        return [
            Telemetry(
                der_id=der_id,
                ts=self.ts,
                p_w=p,
                q_var=q,
                v_v=v,
                f_hz=f,
                soc=s,
                status=OperationalStatus(st),
                available=a,
            )
            for der_id, p, q, v, f, s, st, a in zip(
                self.der_id.tolist(),
                self.p_w.tolist(),
                self.q_var.tolist(),
                self.v_v.tolist(),
                self.f_hz.tolist(),
                soc,
                self.status.tolist(),
                self.available.tolist(),
                strict=True,
            )
        ]


@dataclass(slots=True)
class _Group:
    rows: NDArray[np.intp]
    model: Model


# Per-row state: name -> (dtype, default).
_ROW_STATE: dict[str, tuple[type, float | bool | int]] = {
    "p_w": (np.float64, 0.0),
    "q_var": (np.float64, 0.0),
    "v_pu": (np.float64, 1.0),
    "online": (np.bool_, True),
    "connected": (np.bool_, True),
    "energized": (np.bool_, True),
    "p_request": (np.float64, np.nan),
    "p_cap": (np.float64, np.inf),
    "consume_cap": (np.float64, np.inf),
    "q_mode": (np.int8, _Q_NONE),
    "q_value": (np.float64, 0.0),
    "vv_curve": (np.intp, -1),
    "vw_curve": (np.intp, -1),
    "demand_level": (np.float64, 0.0),
    "temp_offset_k": (np.float64, 0.0),
    "irradiance_factor": (np.float64, 1.0),
}
_SLOT_RESET: dict[str, tuple[str, ...]] = {
    POWER: ("p_request",),
    LIMIT: ("p_cap",),
    LOAD_LIMIT: ("consume_cap",),
    REACTIVE: ("q_mode", "q_value", "vv_curve"),
    VOLT_WATT: ("vw_curve",),
    DEMAND: ("demand_level",),
    CONNECT: ("connected",),
    ENERGIZE: ("energized",),
}


class FleetSimulator:
    """Simulates every DER of a fleet; see the module docstring.

    ``ders`` with ``enabled=False`` start offline. ``sites`` give the feeder of each DER
    for scenario filters (a DER whose site is unknown has no feeder). ``f_nom_hz`` is the
    nominal frequency reported in telemetry.
    """

    def __init__(
        self,
        ders: Sequence[Der],
        sites: Iterable[Site] = (),
        *,
        start: datetime,
        seed: int = 0,
        weather: Weather | None = None,
        f_nom_hz: float = 60.0,
        max_substep_s: float = 60.0,
    ) -> None:
        if max_substep_s <= 0:
            raise ValueError("max_substep_s must be positive")
        self.weather = weather or default_weather()
        self.f_nom_hz = f_nom_hz
        self.max_substep_s = max_substep_s
        self.rng = np.random.default_rng(seed)
        self._t = utc(start).timestamp()
        self._ders: list[Der] = []
        self._index: dict[str, int] = {}
        self._sites: dict[str, Site] = {}
        self._ids = np.empty(0, dtype=np.str_)
        self._feeder = np.empty(0, dtype=object)
        self._kind = np.empty(0, dtype=object)
        self._caps: dict[str, FloatArray] = {}
        self._state: dict[str, np.ndarray] = {
            name: np.empty(0, dtype=dt) for name, (dt, _) in _ROW_STATE.items()
        }
        self._expiry: dict[str, FloatArray] = {slot: np.empty(0) for slot in _SLOT_RESET}
        self._groups: dict[DerKind, _Group] = {}
        self._curves: dict[tuple[tuple[float, float], ...], int] = {}
        self._curve_xy: list[tuple[FloatArray, FloatArray]] = []
        self._status_changes: list[StatusChange] = []
        self.add(ders, sites)

    # ---------------------------------------------------------------- registry

    def __len__(self) -> int:
        return len(self._ders)

    @property
    def now(self) -> datetime:
        """Simulated time of the last step."""
        return datetime.fromtimestamp(self._t, UTC)

    @property
    def der_ids(self) -> list[str]:
        return [d.id for d in self._ders]

    def der(self, der_id: str) -> Der:
        return self._ders[self.row(der_id)]

    def row(self, der_id: str) -> int:
        try:
            return self._index[der_id]
        except KeyError:
            raise NotFound("der", der_id) from None

    def add(self, ders: Sequence[Der], sites: Iterable[Site] = ()) -> None:
        """Add devices (and the sites that place them on feeders); ids must be new."""
        self._sites.update({s.id: s for s in sites})
        duplicates = sorted({d.id for d in ders if d.id in self._index} | _repeated(d.id for d in ders))
        if duplicates:
            raise ValidationFailed([f"DER {i!r} is already simulated" for i in duplicates])
        unknown = sorted({d.kind for d in ders if d.kind not in SUPPORTED_CONTROLS})
        if unknown:
            raise ValidationFailed([f"no simulator model for DER kind {k}" for k in unknown])
        if not ders:
            return
        offset = len(self._ders)
        n = len(ders)
        self._ders.extend(ders)
        self._index.update({d.id: offset + i for i, d in enumerate(ders)})
        self._ids = np.concatenate([self._ids, np.array([d.id for d in ders], dtype=np.str_)])
        feeders = [self._site_feeder(d.site_id) for d in ders]
        self._feeder = np.concatenate([self._feeder, np.array(feeders, dtype=object)])
        self._kind = np.concatenate([self._kind, np.array([d.kind for d in ders], dtype=object)])
        for name in ("w_max", "w_max_consume", "va_max", "var_max_inject", "var_max_absorb", "v_nom"):
            values = np.array([getattr(d.capabilities, name) for d in ders], dtype=np.float64)
            self._caps[name] = np.concatenate([self._caps.get(name, np.empty(0)), values])
        ramp = np.array([d.capabilities.ramp_w_per_s or np.inf for d in ders], dtype=np.float64)
        self._caps["ramp"] = np.concatenate([self._caps.get("ramp", np.empty(0)), ramp])
        for name, (dtype, default) in _ROW_STATE.items():
            self._state[name] = np.concatenate([self._state[name], np.full(n, default, dtype=dtype)])
        self._state["online"][offset:] = [d.enabled for d in ders]
        for slot in _SLOT_RESET:
            self._expiry[slot] = np.concatenate([self._expiry[slot], np.full(n, np.inf)])
        by_kind: dict[DerKind, list[int]] = {}
        for i, d in enumerate(ders):
            by_kind.setdefault(d.kind, []).append(i)
        for kind, local in by_kind.items():
            model = build_model(kind, [ders[i] for i in local], self.rng, self._t, self.weather.tz_offset_s)
            rows = np.array(local, dtype=np.intp) + offset
            group = self._groups.get(kind)
            if group is None:
                self._groups[kind] = _Group(rows, model)
            else:
                self._groups[kind] = _Group(np.concatenate([group.rows, rows]), group.model.concat(model))  # type: ignore[arg-type]

    def _site_feeder(self, site_id: str) -> str | None:
        site = self._sites.get(site_id)
        return site.feeder_id if site else None

    def model(self, kind: DerKind) -> tuple[NDArray[np.intp], Model]:
        """The fleet rows and physics model of one kind (read-only use)."""
        group = self._groups.get(kind)
        if group is None:
            raise NotFound("simulated DER kind", str(kind))
        return group.rows, group.model

    # ---------------------------------------------------------------- selection and environment

    def select(
        self,
        kinds: Iterable[DerKind] | None = None,
        feeders: Iterable[str] | None = None,
        *,
        online: bool | None = None,
    ) -> BoolArray:
        """Row mask of devices of ``kinds`` on ``feeders`` (None means any)."""
        mask = np.ones(len(self._ders), dtype=bool)
        if kinds is not None:
            mask &= np.isin(self._kind, list(kinds))
        if feeders is not None:
            mask &= np.isin(self._feeder, list(feeders))
        if online is not None:
            mask &= self._state["online"] == online
        return mask

    def set_online(self, mask: BoolArray, online: bool, detail: str = "") -> list[str]:
        """Take devices off or back on line; returns the ids whose state changed."""
        changed = mask & (self._state["online"] != online)
        self._state["online"][changed] = online
        ids = self._ids[changed].tolist()
        self._status_changes.extend(StatusChange(i, online, detail) for i in ids)
        return ids

    def drain_status_changes(self) -> list[StatusChange]:
        """Online/offline changes since the last call, in order."""
        changes, self._status_changes = self._status_changes, []
        return changes

    def is_online(self, der_id: str) -> bool:
        return bool(self._state["online"][self.row(der_id)])

    def set_temperature_offset(self, offset_k: float, mask: BoolArray | None = None) -> None:
        """Add ``offset_k`` [K] to the outdoor temperature seen by ``mask`` (all by default)."""
        self._state["temp_offset_k"][_all(mask, len(self))] = offset_k

    def set_irradiance_factor(self, factor: float, mask: BoolArray | None = None) -> None:
        """Scale plane-of-array irradiance by ``factor`` in [0, 1] (cloud cover)."""
        if not 0.0 <= factor <= 1.0:
            raise ValueError("irradiance factor must be within [0, 1]")
        self._state["irradiance_factor"][_all(mask, len(self))] = factor

    def set_voltage_pu(self, v_pu: FloatArray, mask: BoolArray | None = None) -> None:
        """Terminal voltage [pu] (e.g. from a power flow) used by volt-var/volt-watt and telemetry."""
        if np.any(np.asarray(v_pu) < 0) or not np.all(np.isfinite(v_pu)):
            raise ValueError("voltages must be finite and >= 0 pu")
        self._state["v_pu"][_all(mask, len(self))] = v_pu

    def ev_surge(self, mask: BoolArray, need_wh: float, dwell_s: float) -> int:
        """Plug in vehicles now at the EV chargers in ``mask``; returns how many arrived."""
        rows, ev = self.model(DerKind.EV_CHARGER)
        assert isinstance(ev, EvChargers)
        local = mask[rows] & ~ev.connected
        ev.plug_in(local, self._t, np.full(len(rows), need_wh), np.full(len(rows), dwell_s))
        return int(local.sum())

    # ---------------------------------------------------------------- controls

    def apply(self, der_id: str, control: Control, *, until: datetime | None = None) -> str:
        """Apply ``control`` to one device until ``until`` (or until replaced); returns its slot.

        Raises :class:`NotFound` for an unknown DER and :class:`LimitViolation` for a control
        the device cannot obey or while it is offline. Magnitudes beyond the device's
        ratings are clipped to them, as a device would.
        """
        row = self.check(der_id, control)
        slot = self._set_control(row, control)
        self._expiry[slot][row] = utc(until).timestamp() if until is not None else np.inf
        return slot

    def check(self, der_id: str, control: Control) -> int:
        """Raise as :meth:`apply` would, without applying; returns the device's row."""
        row = self.row(der_id)
        der = self._ders[row]
        declared = der.capabilities.controls
        if control.kind not in SUPPORTED_CONTROLS[der.kind] or (declared and control.kind not in declared):
            raise LimitViolation(der_id, f"simulated {der.kind} does not support {control.kind}")
        if not self._state["online"][row]:
            raise LimitViolation(der_id, "device is offline")
        return row

    def _set_control(self, row: int, control: Control) -> str:
        s = self._state
        w_max = self._caps["w_max"][row]
        match control:
            case ChargeDischarge(w=w) | ActivePowerTarget(w=w):
                s["p_request"][row] = w
                return POWER
            case FixedActivePower(pct=pct):
                s["p_request"][row] = pct / 100.0 * w_max
                return POWER
            case ActivePowerLimit(pct=pct):
                s["p_cap"][row] = pct / 100.0 * w_max
                return LIMIT
            case GenerationLimit(w=w):
                s["p_cap"][row] = w
                return LIMIT
            case LoadLimit(w=w):
                s["consume_cap"][row] = w
                return LOAD_LIMIT
            case ChargingLimit(limit=limit, unit=unit, phases=phases):
                der = self._ders[row]
                per_phase = der.capabilities.v_nom * (phases or der.capabilities.phases)
                s["consume_cap"][row] = limit if unit == "W" else limit * per_phase
                return LOAD_LIMIT
            case FixedReactivePower(var=var):
                s["q_mode"][row], s["q_value"][row] = _Q_FIXED, var
                return REACTIVE
            case FixedPowerFactor(pf=pf, absorbing=absorbing):
                s["q_mode"][row], s["q_value"][row] = _Q_PF, -pf if absorbing else pf
                return REACTIVE
            case VoltVarCurve(points=points):
                s["q_mode"][row], s["vv_curve"][row] = _Q_VOLT_VAR, self._curve_id(points)
                return REACTIVE
            case VoltWattCurve(points=points):
                s["vw_curve"][row] = self._curve_id(points)
                return VOLT_WATT
            case LoadShed(level=level):
                s["demand_level"][row] = level
                return DEMAND
            case LoadUp(level=level):
                s["demand_level"][row] = -level
                return DEMAND
            case Connect(connected=connected):
                s["connected"][row] = connected
                return CONNECT
            case Energize(energize=energize):
                s["energized"][row] = energize
                return ENERGIZE
        raise LimitViolation(self._ders[row].id, f"the simulator does not model {control.kind}")

    def _curve_id(self, points: tuple[CurvePoint, ...]) -> int:
        key = tuple((p.x, p.y) for p in points)
        cid = self._curves.get(key)
        if cid is None:
            cid = self._curves[key] = len(self._curve_xy)
            self._curve_xy.append((np.array([p[0] for p in key]), np.array([p[1] for p in key])))
        return cid

    def _curve_values(self, curve: NDArray[np.intp], x: FloatArray) -> FloatArray:
        out = np.full(len(curve), np.nan)
        for cid in np.unique(curve[curve >= 0]).tolist():
            rows = curve == cid
            xs, ys = self._curve_xy[cid]
            out[rows] = np.interp(x[rows], xs, ys)
        return out

    def _expire(self, t_s: float) -> None:
        for slot, expiry in self._expiry.items():
            due = expiry <= t_s
            if due.any():
                for name in _SLOT_RESET[slot]:
                    self._state[name][due] = _ROW_STATE[name][1]
                expiry[due] = np.inf

    # ---------------------------------------------------------------- stepping

    def step(self, now: datetime) -> None:
        """Advance every device from the last step to ``now`` (no-op if ``now`` is not later)."""
        t_end = utc(now).timestamp()
        total = t_end - self._t
        if total <= 0.0:
            return
        n_sub = max(1, math.ceil(total / self.max_substep_s))
        dt = total / n_sub
        for k in range(n_sub):
            t = self._t + dt * (k + 1) if k + 1 < n_sub else t_end
            self._advance(t, dt)
        self._t = t_end

    def _advance(self, t: float, dt: float) -> None:
        self._expire(t)
        s, caps = self._state, self._caps
        run = s["online"] & s["connected"] & s["energized"]
        p_old = s["p_w"].copy()
        p_cap = s["p_cap"].copy()
        volt_watt = self._curve_values(s["vw_curve"], s["v_pu"])
        p_cap = np.where(np.isnan(volt_watt), p_cap, np.minimum(p_cap, volt_watt * caps["w_max"]))
        t_out = self.weather.temp_air_c(t)
        hour = self.weather.local_hour(t)
        dc_per_w = None
        for kind, group in self._groups.items():
            rows, model = group.rows, group.model
            r = run[rows]
            match model:
                case PvArrays():
                    if dc_per_w is None:
                        dc_per_w = self.weather.dc_per_w(t)
                    p = np.minimum(model.available_w(dc_per_w, s["irradiance_factor"][rows]), p_cap[rows])
                    p = np.minimum(p, p_old[rows] + caps["ramp"][rows] * dt)
                    s["p_w"][rows] = np.where(r, np.maximum(p, 0.0), 0.0)
                case BatteryBank():
                    request = np.where(
                        np.isnan(s["p_request"][rows]), _self_schedule(model, hour), s["p_request"][rows]
                    )
                    request = np.clip(request, -s["consume_cap"][rows], p_cap[rows])
                    ramp = caps["ramp"][rows] * dt
                    request = np.clip(request, p_old[rows] - ramp, p_old[rows] + ramp)
                    s["p_w"][rows] = model.step(np.where(r, request, 0.0), dt)
                case EvChargers():
                    limit = np.where(r, s["consume_cap"][rows], 0.0)
                    s["p_w"][rows] = model.step(t, dt, limit, self.weather.tz_offset_s, self.rng)
                case Hvac():
                    offset = s["demand_level"][rows] * HVAC_OFFSET_K
                    allowed = r & (s["consume_cap"][rows] >= model.w_elec)
                    s["p_w"][rows] = model.step(t_out + s["temp_offset_k"][rows], dt, offset, allowed)
                case WaterHeaters():
                    level = s["demand_level"][rows]
                    offset = np.where(level > 0, -level * WATER_SHED_K, -level * WATER_LOAD_UP_K)
                    model.start_draws(hour, dt, self.rng)
                    allowed = r & (s["consume_cap"][rows] >= model.element_w)
                    s["p_w"][rows] = model.step(dt, offset, allowed)
                case CiLoads():
                    target = -s["p_request"][rows]
                    cap = np.where(r, s["consume_cap"][rows], 0.0)
                    temp = t_out + s["temp_offset_k"][rows]
                    s["p_w"][rows] = model.step(
                        hour, temp, dt, s["demand_level"][rows], target, cap, self.rng
                    )
                case _:
                    raise AssertionError(f"unhandled model for {kind}")
        s["q_var"] = np.where(run, self._reactive(s["p_w"]), 0.0)

    def _reactive(self, p: FloatArray) -> FloatArray:
        """Reactive power [var] from the active mode (IEEE 1547-2018 5.3), within var and VA ratings."""
        s, caps = self._state, self._caps
        mode, value = s["q_mode"], s["q_value"]
        if not mode.any():
            return np.zeros_like(p)
        pf = np.where(mode == _Q_PF, np.abs(value), 1.0)
        q_pf = np.sign(value) * np.abs(p) * np.sqrt(1.0 - pf * pf) / pf
        vv = self._curve_values(s["vv_curve"], s["v_pu"])
        q_vv = np.where(vv >= 0, vv * caps["var_max_inject"], vv * caps["var_max_absorb"])
        q = np.select([mode == _Q_FIXED, mode == _Q_PF, mode == _Q_VOLT_VAR], [value, q_pf, q_vv], 0.0)
        q = np.clip(np.nan_to_num(q), -caps["var_max_absorb"], caps["var_max_inject"])
        headroom = np.sqrt(np.maximum(caps["va_max"] ** 2 - p * p, 0.0))
        return np.where(caps["va_max"] > 0, np.clip(q, -headroom, headroom), q)

    # ---------------------------------------------------------------- telemetry

    def columns(self) -> FleetColumns:
        """Telemetry of every online device as columns (the fast path)."""
        s = self._state
        online = s["online"]
        soc = np.full(len(self), np.nan)
        for group in self._groups.values():
            match group.model:
                case BatteryBank(soc=battery_soc):
                    soc[group.rows] = battery_soc
                case EvChargers() as ev:
                    soc[group.rows] = np.where(ev.connected, ev.vehicle_soc, np.nan)
                case _:
                    pass
        p = s["p_w"]
        status = np.where(p != 0.0, OperationalStatus.ON, OperationalStatus.STANDBY).astype(np.int8)
        status[~(s["connected"] & s["energized"])] = OperationalStatus.OFF
        return FleetColumns(
            ts=self.now,
            der_id=self._ids[online],
            p_w=p[online],
            q_var=s["q_var"][online],
            v_v=(s["v_pu"] * self._caps["v_nom"])[online],
            f_hz=np.full(int(online.sum()), self.f_nom_hz),
            soc=soc[online],
            status=status[online],
            available=(s["connected"] & s["energized"])[online],
        )

    def device_state(self) -> tuple[list[str], dict[str, FloatArray]]:
        """Kind-specific state (:mod:`derms.core.device_state`) of the online EV chargers,
        thermostats and water heaters, as a device of each kind would report it: an EV's
        remaining need at the meter (the vehicle's need over the charger's efficiency) and its
        departure while plugged in (NaN when no vehicle is), a thermostat's indoor and outdoor
        temperature, a tank's energy above its minimum delivery temperature and at its maximum."""
        n = len(self)
        cols = {name: np.full(n, np.nan) for name in STATE_FIELDS}
        kinds = np.zeros(n, bool)
        t_out = self.weather.temp_air_c(self._t)
        for group in self._groups.values():
            rows, m = group.rows, group.model
            match m:
                case EvChargers():
                    cols["ev_energy_needed_wh"][rows] = np.where(
                        m.connected, m.need_wh / m.efficiency, np.nan
                    )
                    cols["ev_departure_ms"][rows] = np.where(m.connected, m.departure_s * 1000.0, np.nan)
                case Hvac():
                    cols["temp_c"][rows] = m.t_in_c
                    cols["temp_out_c"][rows] = t_out + self._state["temp_offset_k"][rows]
                case WaterHeaters():
                    wh_per_k = m.volume_l * CP_WATER / 3600.0
                    cols["tank_wh"][rows] = np.maximum(wh_per_k * (m.t_tank_c - m.t_min_c), 0.0)
                    cols["tank_max_wh"][rows] = wh_per_k * (m.t_max_c - m.t_min_c)
                case _:
                    continue
            kinds[rows] = True
        report = kinds & self._state["online"]
        return self._ids[report].tolist(), {name: col[report] for name, col in cols.items()}

    def samples(self) -> list[Telemetry]:
        """Telemetry of every online device as :class:`Telemetry` objects."""
        return self.columns().samples()

    def power(self) -> FloatArray:
        """Active power of every device [W] (offline devices 0), in fleet row order."""
        return self._state["p_w"].copy()


def _self_schedule(battery: BatteryBank, local_hour: float) -> FloatArray:
    """Uncontrolled storage follows a fixed daily pattern (:data:`BATTERY_SELF_SCHEDULE`)."""
    for start, end, fraction in BATTERY_SELF_SCHEDULE:
        if start <= local_hour < end:
            rating = battery.w_discharge_max if fraction > 0 else battery.w_charge_max
            return fraction * rating
    return np.zeros(len(battery))


def _all(mask: BoolArray | None, n: int) -> BoolArray:
    return np.ones(n, dtype=bool) if mask is None else mask


def _repeated(ids: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for i in ids:
        (repeated if i in seen else seen).add(i)
    return repeated
