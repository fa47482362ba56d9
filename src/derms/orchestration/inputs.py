"""Typed columnar inputs of the orchestrator: one row per DER, numpy arrays throughout.

:class:`FleetInput` carries the device state the optimizer needs (the columns of the fleet
state, ``derms.fleet.FleetState``, plus the kind-specific physical state) and
:class:`Preferences` the per-DER contract and customer terms. Every array has one entry per
DER; a value that does not apply to a DER's kind is ``NaN``. Powers follow the derms sign
convention (positive injects). Units: W, var, Wh, s, degC, K/W, J/K.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from derms.core.der import DerKind

KINDS: tuple[DerKind, ...] = tuple(DerKind)
"""``kind`` codes are positions in this tuple (as in ``derms.fleet``)."""


def kind_code(kind: DerKind) -> int:
    return KINDS.index(kind)


def _array(value: Any, n: int, dtype: Any, fill: Any) -> np.ndarray:
    if value is None:
        return np.full(n, fill, dtype=dtype)
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"expected shape ({n},), got {arr.shape}")
    return arr.copy()


@dataclass(frozen=True, slots=True, eq=False)
class FleetInput:
    """Device state per DER (columns as in ``derms.fleet.FleetState``).

    ``bus`` is the DER's position in the grid model's bus list (``-1`` when unknown) and
    ``feeder`` its feeder index (``-1`` unknown). ``p_w`` is the baseline: what the device
    does without dispatch. ``soc`` is a fraction of ``wh_max``.
    """

    der_ids: tuple[str, ...]
    kind: np.ndarray
    feeder: np.ndarray
    bus: np.ndarray
    p_w: np.ndarray
    q_var: np.ndarray
    soc: np.ndarray
    online: np.ndarray
    available: np.ndarray
    w_max: np.ndarray
    w_max_consume: np.ndarray
    wh_max: np.ndarray
    var_max_inject: np.ndarray
    var_max_absorb: np.ndarray
    ramp_w_per_s: np.ndarray
    """NaN when the device declares no ramp limit."""
    eta_charge: np.ndarray
    """One-way charging efficiency [-] (sqrt of round-trip for batteries)."""
    eta_discharge: np.ndarray
    ev_energy_needed_wh: np.ndarray
    """Energy the EV still needs by its departure [Wh]."""
    ev_departure_s: np.ndarray
    """Seconds from now until the EV leaves."""
    temp_c: np.ndarray
    """Indoor temperature of a thermostat's zone [degC]."""
    temp_out_c: np.ndarray
    r_k_per_w: np.ndarray
    """1R1C thermal resistance [K/W]."""
    c_j_per_k: np.ndarray
    """1R1C thermal capacitance [J/K]."""
    cop: np.ndarray
    """Coefficient of performance of the cooling unit [-]."""
    tank_wh: np.ndarray
    """Water heater: usable thermal energy stored above the minimum delivery temperature [Wh]."""
    tank_max_wh: np.ndarray
    draw_w: np.ndarray
    """Water heater: expected hot-water draw [W thermal]."""
    baseline_soc: np.ndarray
    """Storage: the state of charge its baseline would have now without the platform's commands
    (NaN: ``soc``). Its baseline power stops where that SoC reaches the reserve or the ceiling."""
    p_w_steps: np.ndarray | None = None
    """Baseline of each step of a horizon [W], ``(n, k)`` with ``k`` at least the planned steps;
    NaN where ``p_w`` persists. None: ``p_w`` in every step. Not used for EV chargers, whose
    baseline the flexibility model derives from their need."""

    @property
    def n(self) -> int:
        return len(self.der_ids)

    @classmethod
    def build(cls, der_ids: list[str] | tuple[str, ...], **columns: Any) -> FleetInput:
        """Build from keyword arrays (or scalars, broadcast); omitted columns get defaults."""
        n = len(der_ids)
        if len(set(der_ids)) != n:
            raise ValueError("der_ids must be unique")
        names = {f.name for f in fields(cls)} - {"der_ids", "p_w_steps"}
        unknown = set(columns) - names - {"p_w_steps"}
        if unknown:
            raise ValueError(f"unknown columns: {sorted(unknown)}")
        ints = {"kind": np.int8, "feeder": np.int32, "bus": np.int32}
        bools = {"online": True, "available": True}
        ones = {"eta_charge", "eta_discharge", "cop"}
        zeros = {"p_w", "q_var", "w_max", "w_max_consume", "wh_max", "var_max_inject", "var_max_absorb"}
        values: dict[str, np.ndarray] = {}
        for name in names:
            if name in ints:
                values[name] = _array(columns.get(name), n, ints[name], -1 if name != "kind" else 0)
            elif name in bools:
                values[name] = _array(columns.get(name), n, bool, bools[name])
            else:
                fill = 1.0 if name in ones else 0.0 if name in zeros else np.nan
                values[name] = _array(columns.get(name), n, float, fill)
        steps = columns.get("p_w_steps")
        inp = cls(
            der_ids=tuple(der_ids), **values, p_w_steps=None if steps is None else np.array(steps, float)
        )
        inp.validate()
        return inp

    def validate(self) -> None:
        """Collect every problem (column, offending DER ids) and raise one ``ValueError``."""
        problems: list[str] = []

        def check(mask: np.ndarray, what: str) -> None:
            if mask.any():
                ids = [self.der_ids[i] for i in np.flatnonzero(mask)[:5]]
                problems.append(f"{what}: {ids}{' ...' if mask.sum() > 5 else ''}")

        check((self.kind < 0) | (self.kind >= len(KINDS)), "kind code out of range")
        for name in ("w_max", "w_max_consume", "wh_max", "var_max_inject", "var_max_absorb"):
            check(~(getattr(self, name) >= 0), f"{name} must be >= 0")
        check(~np.isnan(self.soc) & ((self.soc < 0) | (self.soc > 1)), "soc must be in [0, 1]")
        bsoc = self.baseline_soc
        check(~np.isnan(bsoc) & ((bsoc < 0) | (bsoc > 1)), "baseline_soc must be in [0, 1]")
        for name in ("eta_charge", "eta_discharge"):
            arr = getattr(self, name)
            check(~((arr > 0) & (arr <= 1)), f"{name} must be in (0, 1]")
        check(~np.isnan(self.ramp_w_per_s) & (self.ramp_w_per_s <= 0), "ramp_w_per_s must be > 0")
        check(~np.isfinite(self.p_w), "p_w must be finite")
        if self.p_w_steps is not None:
            if self.p_w_steps.ndim != 2 or self.p_w_steps.shape[0] != self.n:
                problems.append(f"p_w_steps must have shape ({self.n}, steps), got {self.p_w_steps.shape}")
            else:
                check(np.isinf(self.p_w_steps).any(axis=1), "p_w_steps must be finite or NaN")
        storage = np.isin(self.kind, [kind_code(DerKind.HOME_BATTERY), kind_code(DerKind.UTILITY_BATTERY)])
        check(storage & (np.isnan(self.soc) | (self.wh_max <= 0)), "storage needs soc and wh_max > 0")
        ev = self.kind == kind_code(DerKind.EV_CHARGER)
        check(
            ev & np.isnan(self.ev_departure_s) & ~np.isnan(self.ev_energy_needed_wh),
            "EV need without departure",
        )
        th = self.kind == kind_code(DerKind.THERMOSTAT)
        for name in ("temp_c", "temp_out_c", "r_k_per_w", "c_j_per_k"):
            check(th & ~np.isfinite(getattr(self, name)), f"thermostat needs {name}")
        wh = self.kind == kind_code(DerKind.WATER_HEATER)
        check(wh & ~(np.isfinite(self.tank_wh) & np.isfinite(self.tank_max_wh)), "water heater needs tank_wh")
        if problems:
            raise ValueError("invalid fleet input: " + "; ".join(problems))


@dataclass(frozen=True, slots=True, eq=False)
class Preferences:
    """Contract and customer terms per DER.

    ``opt_out`` has shape ``(n, steps)``: True where the customer opted out of that step
    (see :func:`derms.orchestration.preferences.opt_out_mask`). Costs are what a deviation
    from the baseline costs per kWh, upwards (more injection / less consumption) and
    downwards. ``reliability`` is the share of past dispatches the DER delivered
    (availability history); it orders backups and ties.
    """

    cost_up: np.ndarray
    cost_down: np.ndarray
    opt_out: np.ndarray
    soc_min: np.ndarray
    soc_max: np.ndarray
    cycles_today: np.ndarray
    max_daily_cycles: np.ndarray
    contract_up_w: np.ndarray
    """Largest deviation up from the baseline [W], ``(n, steps)`` (given per DER or per step)."""
    contract_down_w: np.ndarray
    comfort_min_c: np.ndarray
    comfort_max_c: np.ndarray
    reliability: np.ndarray

    @classmethod
    def build(cls, n: int, steps: int = 1, **columns: Any) -> Preferences:
        defaults = {
            "cost_up": 0.1,
            "cost_down": 0.1,
            "soc_min": 0.0,
            "soc_max": 1.0,
            "cycles_today": 0.0,
            "max_daily_cycles": np.inf,
            "contract_up_w": np.inf,
            "contract_down_w": np.inf,
            "comfort_min_c": np.nan,
            "comfort_max_c": np.nan,
            "reliability": 1.0,
        }
        unknown = set(columns) - set(defaults) - {"opt_out"}
        if unknown:
            raise ValueError(f"unknown preference columns: {sorted(unknown)}")
        values = {
            k: _array(None if np.ndim(columns.get(k)) == 2 else columns.get(k), n, float, v)
            for k, v in defaults.items()
        }
        for name in ("contract_up_w", "contract_down_w"):  # per DER, or per DER and step
            value = columns.get(name)
            if value is not None and np.ndim(value) == 2:
                if np.shape(value) != (n, steps):
                    raise ValueError(
                        f"{name} must have shape ({n},) or ({n}, {steps}), got {np.shape(value)}"
                    )
                values[name] = np.array(value, float)
            else:
                values[name] = np.repeat(values[name][:, None], steps, axis=1)
        opt = columns.get("opt_out")
        opt_out = np.zeros((n, steps), bool) if opt is None else np.asarray(opt, bool)
        if opt_out.ndim == 1:
            opt_out = np.repeat(opt_out[:, None], steps, axis=1)
        if opt_out.shape != (n, steps):
            raise ValueError(f"opt_out must have shape ({n}, {steps}), got {opt_out.shape}")
        prefs = cls(opt_out=opt_out, **values)
        problems = []
        if np.any(values["cost_up"] < 0) or np.any(values["cost_down"] < 0):
            problems.append("costs must be >= 0")
        if np.any(
            ~((values["soc_min"] >= 0) & (values["soc_min"] <= values["soc_max"]) & (values["soc_max"] <= 1))
        ):
            problems.append("need 0 <= soc_min <= soc_max <= 1")
        if np.any(~((values["reliability"] >= 0) & (values["reliability"] <= 1))):
            problems.append("reliability must be in [0, 1]")
        if problems:
            raise ValueError("invalid preferences: " + "; ".join(problems))
        return prefs

    @property
    def steps(self) -> int:
        return int(self.opt_out.shape[1])


_STATE_COLUMNS = (
    "kind",
    "feeder",
    "p_w",
    "q_var",
    "soc",
    "online",
    "available",
    "w_max",
    "w_max_consume",
    "wh_max",
    "var_max_inject",
    "var_max_absorb",
    "ramp_w_per_s",
)


def from_fleet_state(state: Any, *, bus: np.ndarray | None = None, **columns: Any) -> FleetInput:
    """A :class:`FleetInput` from the registered rows of a ``derms.fleet.FleetState``.

    ``bus`` (grid bus position per state row) and ``columns`` (kind-specific state, or
    overrides of state columns) are indexed like the state's rows. A DER without a power
    measurement yet has a baseline of 0 W.
    """
    rows = np.flatnonzero(state.registered)
    values = {name: np.asarray(getattr(state, name))[rows] for name in _STATE_COLUMNS}
    values["p_w"] = np.nan_to_num(values["p_w"])
    values["q_var"] = np.nan_to_num(values["q_var"])
    for name in ("w_max", "w_max_consume", "wh_max", "var_max_inject", "var_max_absorb"):
        values[name] = np.nan_to_num(values[name])
    values["online"] = values["online"] & np.asarray(state.enabled)[rows]
    extra = {name: np.asarray(col)[rows] for name, col in columns.items()}
    if bus is not None:
        extra["bus"] = np.asarray(bus)[rows]
    values.update(extra)
    return FleetInput.build([state.der_ids[i] for i in rows], **values)
