"""Device flexibility: feasible active/reactive power per DER and time step.

Every controllable device is described as a *generalized battery* (Hao, Sanandaji, Poolla and
Vincent, "Aggregate flexibility of thermostatically controlled loads", IEEE Trans. Power
Systems 30(1), 2015): per step a power box ``[p_lo, p_hi]`` and, for energy-limited kinds, an
energy state ``e`` with dissipation ``alpha`` that evolves with the deviation from the
baseline ``u`` (up: more injection / less consumption) and ``v`` (down)::

    e[t+1] = alpha * e[t] + w[t] - dt_h * (k_up * u[t] - k_down * v[t]),   e_lo[t] <= e[t+1] <= e_hi[t]

* battery: ``e`` is stored energy, ``k_up = 1/eta_discharge``, ``k_down = eta_charge``, bounds from the
  customer's SoC reserve and ceiling;
* EV: ``e`` is the energy delivered since now, it must reach the energy needed by departure;
* thermostat (1R1C, exact discretisation ``a = exp(-dt / RC)``; Mathieu, Koch and Callaway,
  "State estimation and control of electric loads to manage real-time energy imbalance",
  IEEE Trans. Power Systems 28(1), 2013): ``e = C (T_max - T)`` is the cooling stored against
  the top of the comfort band;
* water heater: ``e`` is the tank's usable energy, drained by the expected draw.

The baseline is the DER's ``FleetInput.p_w`` in every step unless ``FleetInput.p_w_steps``
gives one per step (a forecast, e.g. PV output towards sunset); a PV DER may be curtailed from
its baseline down to 0.

The first step's energy bounds are also folded into the device power box, so a single
interval dispatch is exact per device. Each bound records the constraint that set it
(:class:`Binding`), which becomes the setpoint's :class:`derms.core.Reason`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from derms.core.der import DerKind
from derms.orchestration.inputs import FleetInput, Preferences, kind_code

_EPS = 1e-9


class Binding(IntEnum):
    """What bounds a device in one direction (stored as int8 per DER and step)."""

    NONE = 0
    DEVICE = 1
    SOC = 2
    RAMP = 3
    CONTRACT = 4
    OPT_OUT = 5
    WARRANTY = 6
    COMFORT = 7
    EV_DEPARTURE = 8
    OFFLINE = 9
    PV_AVAILABLE = 10
    TANK = 11

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Binding.NONE: "",
    Binding.DEVICE: "device:rating",
    Binding.SOC: "soc_limit",
    Binding.RAMP: "device:ramp",
    Binding.CONTRACT: "contract:limit",
    Binding.OPT_OUT: "customer:opt_out",
    Binding.WARRANTY: "warranty:daily_cycles",
    Binding.COMFORT: "customer:comfort",
    Binding.EV_DEPARTURE: "customer:ev_departure",
    Binding.OFFLINE: "device:offline",
    Binding.PV_AVAILABLE: "device:pv_available",
    Binding.TANK: "device:tank",
}


@dataclass(frozen=True, slots=True, eq=False)
class Flexibility:
    """Per-DER, per-step flexibility (arrays of shape ``(n, steps)`` unless noted)."""

    dt_s: float
    base: np.ndarray
    p_lo: np.ndarray
    p_hi: np.ndarray
    lo_binding: np.ndarray
    hi_binding: np.ndarray
    q_lo: np.ndarray
    """Reactive power range ``(n,)`` [var]."""
    q_hi: np.ndarray
    q_base: np.ndarray
    has_energy: np.ndarray
    """``(n,)`` True for energy-limited devices."""
    e0: np.ndarray
    e_lo: np.ndarray
    e_hi: np.ndarray
    w: np.ndarray
    """Exogenous energy change per step, including the baseline's own effect [Wh]."""
    alpha: np.ndarray
    k_up: np.ndarray
    k_down: np.ndarray
    throughput_wh: np.ndarray
    """``(n,)`` discharge energy allowed by the warranty's daily cycles (inf if none)."""

    @property
    def n(self) -> int:
        return int(self.base.shape[0])

    @property
    def steps(self) -> int:
        return int(self.base.shape[1])

    @property
    def up(self) -> np.ndarray:
        """Upward headroom ``p_hi - base`` (>= 0)."""
        return self.p_hi - self.base

    @property
    def down(self) -> np.ndarray:
        """Downward headroom ``base - p_lo`` (>= 0)."""
        return self.base - self.p_lo

    def energy(self, p_w: np.ndarray) -> np.ndarray:
        """Each device's energy after every step when it follows ``p_w`` ``(n, steps)``, by its own
        dynamics (the deviation from the baseline is up when positive, down when negative) [Wh]."""
        d = p_w - self.base
        dt_h = self.dt_s / 3600.0
        out = np.empty_like(d)
        e = self.e0
        for t in range(self.steps):
            flow = self.k_up * np.maximum(d[:, t], 0.0) - self.k_down * np.maximum(-d[:, t], 0.0)
            e = self.alpha * e + self.w[:, t] - dt_h * flow
            out[:, t] = e
        return out

    def energy_violation(self, p_w: np.ndarray) -> np.ndarray:
        """Per device, the largest excursion of its energy outside its band under ``p_w`` [Wh]."""
        e = self.energy(p_w)
        over = np.maximum(np.maximum(e - self.e_hi, self.e_lo - e), 0.0)
        return np.where(self.has_energy, over.max(axis=1, initial=0.0), 0.0)

    def take(self, rows: np.ndarray) -> Flexibility:
        """The flexibility of a subset of DERs."""
        return Flexibility(
            dt_s=self.dt_s,
            **{
                name: getattr(self, name)[rows]
                for name in self.__slots__  # type: ignore[attr-defined]
                if name != "dt_s"
            },
        )


class _Bounds:
    """Running lower/upper bounds with the binding constraint of each."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo, self.hi = lo.copy(), hi.copy()
        self.lo_b = np.full(lo.shape, Binding.DEVICE, np.int8)
        self.hi_b = np.full(hi.shape, Binding.DEVICE, np.int8)

    def cap(self, hi: np.ndarray, why: Binding) -> None:
        tighter = hi < self.hi - _EPS
        self.hi = np.where(tighter, hi, self.hi)
        self.hi_b[tighter] = why

    def floor(self, lo: np.ndarray, why: Binding) -> None:
        tighter = lo > self.lo + _EPS
        self.lo = np.where(tighter, lo, self.lo)
        self.lo_b[tighter] = why

    def fix(self, mask: np.ndarray, value: np.ndarray, why: Binding) -> None:
        self.lo = np.where(mask, value, self.lo)
        self.hi = np.where(mask, value, self.hi)
        self.lo_b[mask] = why
        self.hi_b[mask] = why


def _codes(*kinds: DerKind) -> list[int]:
    return [kind_code(k) for k in kinds]


def stored_energy_wh(
    p_w: np.ndarray | float, eta_charge: np.ndarray | float, eta_discharge: np.ndarray | float, hours: float
) -> np.ndarray:
    """Energy [Wh] a store loses (> 0) or gains (< 0) while its AC terminals deliver ``p_w`` for
    ``hours``: ``p / eta_discharge`` discharging, ``p * eta_charge`` charging (the generalized
    battery's ``k_up`` and ``k_down``)."""
    p = np.asarray(p_w, float)
    return np.where(p > 0, p / eta_discharge, p * eta_charge) * hours


def _storage_baseline(
    fleet: FleetInput, prefs: Preferences, base: np.ndarray, dt_h: float, rows: np.ndarray
) -> np.ndarray:
    """Each step's baseline power of the storage ``rows`` [W]: ``base`` cut where the energy it moves would
    take the baseline's state of charge (``fleet.baseline_soc``, else ``soc``) past
    ``prefs.soc_min`` (discharging) or ``prefs.soc_max`` (charging); the step that reaches the
    bound keeps the remainder."""
    base = base[rows]
    wh = np.nan_to_num(fleet.wh_max[rows])[:, None]
    soc = np.where(np.isnan(fleet.baseline_soc), fleet.soc, fleet.baseline_soc)
    soc = np.nan_to_num(soc[rows])[:, None]
    # Energy each step's baseline takes out of (> 0) or puts into (< 0) the store [Wh].
    moved = stored_energy_wh(base, fleet.eta_charge[rows, None], fleet.eta_discharge[rows, None], dt_h)
    before = np.cumsum(moved, axis=1) - moved  # moved in the steps before
    room_out = np.maximum(soc - prefs.soc_min[rows, None], 0.0) * wh - before
    room_in = np.maximum(prefs.soc_max[rows, None] - soc, 0.0) * wh + before
    allowed = np.where(
        moved > 0, np.clip(room_out, 0.0, moved), np.where(moved < 0, -np.clip(room_in, 0.0, -moved), 0.0)
    )
    share = np.divide(allowed, moved, out=np.ones_like(moved), where=moved != 0)
    return base * share


def flexibility(fleet: FleetInput, prefs: Preferences, *, dt_s: float = 900.0, steps: int = 1) -> Flexibility:
    """Flexibility of every DER over ``steps`` intervals of ``dt_s`` seconds starting now."""
    if dt_s <= 0 or steps < 1:
        raise ValueError("need dt_s > 0 and steps >= 1")
    if prefs.opt_out.shape[0] != fleet.n or prefs.steps < steps:
        raise ValueError("preferences do not match the fleet and horizon")
    n, dt_h = fleet.n, dt_s / 3600.0
    k = fleet.kind
    pv = np.isin(k, _codes(DerKind.PV_INVERTER, DerKind.UTILITY_PV))
    bat = np.isin(k, _codes(DerKind.HOME_BATTERY, DerKind.UTILITY_BATTERY))
    ev = k == kind_code(DerKind.EV_CHARGER)
    th = k == kind_code(DerKind.THERMOSTAT)
    wh = k == kind_code(DerKind.WATER_HEATER)
    t_end = dt_s * np.arange(1, steps + 1)  # end of each step [s from now]

    col = np.ones((1, steps))
    base = fleet.p_w[:, None] * col
    if fleet.p_w_steps is not None:  # a forecast baseline per step (e.g. PV towards sunset)
        if fleet.p_w_steps.shape[1] < steps:
            raise ValueError(f"p_w_steps has {fleet.p_w_steps.shape[1]} steps, the horizon {steps}")
        ahead = fleet.p_w_steps[:, :steps]
        base = np.where(np.isnan(ahead), base, ahead)
    # EV baseline: uncontrolled charging at full power until the need is met or it leaves.
    dep = np.where(ev, np.nan_to_num(fleet.ev_departure_s, nan=0.0), 0.0)
    # The need the charger can physically meet by departure (the rest is unmet whatever we do).
    need = np.where(
        ev, np.minimum(np.nan_to_num(fleet.ev_energy_needed_wh), fleet.w_max_consume * dep / 3600.0), 0.0
    )
    present = t_end[None, :] <= dep[:, None] + _EPS
    delivered_before = np.minimum(
        need[:, None], fleet.w_max_consume[:, None] * dt_h * np.arange(steps)[None, :]
    )
    ev_base = -np.minimum(fleet.w_max_consume[:, None], (need[:, None] - delivered_before) / dt_h) * present
    base = np.where(ev[:, None], ev_base, base)
    # Storage baseline: its present power while its own energy allows (its controller stops at its
    # reserve or when full), then idle, as an EV's stops when its need is met.
    base[bat] = _storage_baseline(fleet, prefs, base, dt_h, np.flatnonzero(bat))

    lo = np.where(pv, 0.0, -fleet.w_max_consume)[:, None] * col
    # PV may be curtailed down to 0 from its available power, its baseline in each step.
    hi = np.where(pv[:, None], np.maximum(base, 0.0), np.where(bat, fleet.w_max, 0.0)[:, None] * col)
    b = _Bounds(lo, hi)
    b.hi_b[pv] = Binding.PV_AVAILABLE
    b.fix(ev[:, None] & ~present, np.zeros_like(base), Binding.EV_DEPARTURE)

    # Ramp limit from the present output (cumulative over the horizon).
    ramp = np.where(np.isnan(fleet.ramp_w_per_s), np.inf, fleet.ramp_w_per_s)[:, None] * t_end[None, :]
    b.cap(fleet.p_w[:, None] + ramp, Binding.RAMP)
    b.floor(fleet.p_w[:, None] - ramp, Binding.RAMP)
    base = np.clip(base, b.lo, b.hi)
    # Contract limits on the deviation from the baseline.
    b.cap(base + prefs.contract_up_w[:, :steps], Binding.CONTRACT)
    b.floor(base - prefs.contract_down_w[:, :steps], Binding.CONTRACT)

    # Warranty: daily cycle budget of discharge energy.
    budget = np.full(n, np.inf)
    budget[bat] = np.maximum(prefs.max_daily_cycles - prefs.cycles_today, 0.0)[bat] * fleet.wh_max[bat]
    exhausted = bat & (budget <= _EPS)
    b.cap(np.where(exhausted[:, None], np.minimum(base, 0.0), np.inf), Binding.WARRANTY)
    b.cap(base + (budget * fleet.eta_discharge / dt_h)[:, None], Binding.WARRANTY)

    # Energy states.
    e0 = np.zeros(n)
    e_lo = np.full((n, steps), -np.inf)
    e_hi = np.full((n, steps), np.inf)
    w = np.zeros((n, steps))
    alpha = np.ones(n)
    k_up = np.ones(n)
    k_down = np.ones(n)
    e_bind = np.full(n, Binding.NONE, np.int8)

    e0[bat] = (fleet.soc * fleet.wh_max)[bat]
    e_lo[bat] = (prefs.soc_min * fleet.wh_max)[bat, None]
    e_hi[bat] = (prefs.soc_max * fleet.wh_max)[bat, None]
    k_up[bat] = 1.0 / fleet.eta_discharge[bat]
    k_down[bat] = fleet.eta_charge[bat]
    e_bind[bat] = Binding.SOC

    # Energy delivered never falls (an EV does not discharge), so 0 is no constraint before departure;
    # EVs with different departures then aggregate by summing bounds.
    e_lo[ev] = np.where(~present[ev] | (t_end[None, :] >= dep[ev, None] - _EPS), need[ev, None], 0.0)
    e_hi[ev] = need[ev, None]
    e_bind[ev] = Binding.EV_DEPARTURE

    if th.any():
        tmin = np.where(np.isnan(prefs.comfort_min_c), fleet.temp_c - 1.0, prefs.comfort_min_c)[th]
        tmax = np.where(np.isnan(prefs.comfort_max_c), fleet.temp_c + 1.0, prefs.comfort_max_c)[th]
        r, c = fleet.r_k_per_w[th], fleet.c_j_per_k[th]
        a = np.exp(-dt_s / (r * c))
        alpha[th] = a
        gain = (1.0 - a) * r * c * fleet.cop[th] / dt_s  # Wh stored per Wh drawn, for one step
        k_up[th] = gain
        k_down[th] = gain
        e0[th] = c * (tmax - fleet.temp_c[th]) / 3600.0
        e_lo[th] = 0.0
        e_hi[th] = (c * (tmax - tmin) / 3600.0)[:, None]
        w[th] = ((1.0 - a) * c * (tmax - fleet.temp_out_c[th]) / 3600.0)[:, None]
        e_bind[th] = Binding.COMFORT

    e0[wh] = fleet.tank_wh[wh]
    e_lo[wh] = 0.0
    e_hi[wh] = fleet.tank_max_wh[wh, None]
    w[wh] = -(np.nan_to_num(fleet.draw_w[wh]) * dt_h)[:, None]
    e_bind[wh] = Binding.TANK

    # Opt-out and offline devices hold their baseline.
    b.fix(prefs.opt_out[:, :steps], base, Binding.OPT_OUT)
    b.fix(~(fleet.online & fleet.available)[:, None] * col.astype(bool), base, Binding.OFFLINE)

    has_energy = bat | ev | th | wh
    # The baseline's own effect on the energy state: -dt_h * k * base (discharge side for base > 0).
    w = w - dt_h * np.where(base > 0, k_up[:, None], k_down[:, None]) * base * has_energy[:, None]

    # Fold the first step's energy bounds into the power box (exact for a single interval).
    e_next = alpha * e0 + w[:, 0]
    up_room = np.where(
        e_next >= e_lo[:, 0],
        (e_next - e_lo[:, 0]) / (dt_h * k_up),
        -(e_lo[:, 0] - e_next) / (dt_h * k_down),
    )
    down_room = np.where(
        e_next <= e_hi[:, 0],
        (e_hi[:, 0] - e_next) / (dt_h * k_down),
        -(e_next - e_hi[:, 0]) / (dt_h * k_up),
    )
    fold_hi = np.where(has_energy, base[:, 0] + up_room, np.inf)
    fold_lo = np.where(has_energy, base[:, 0] - down_room, -np.inf)
    held = b.lo_b[:, 0] == Binding.OPT_OUT
    held |= b.lo_b[:, 0] == Binding.OFFLINE
    hi0, lo0 = b.hi[:, 0].copy(), b.lo[:, 0].copy()
    tight_hi = (fold_hi < hi0 - _EPS) & ~held
    tight_lo = (fold_lo > lo0 + _EPS) & ~held
    b.hi[:, 0] = np.where(tight_hi, np.maximum(fold_hi, lo0), hi0)
    b.lo[:, 0] = np.where(tight_lo, np.minimum(fold_lo, b.hi[:, 0]), lo0)
    b.hi_b[tight_hi, 0] = e_bind[tight_hi]
    b.lo_b[tight_lo, 0] = e_bind[tight_lo]

    # EV: charge now at least what cannot be made up before departure.
    ev_now = ev & present[:, 0]
    later = np.maximum(dep - dt_s, 0.0) / 3600.0 * fleet.w_max_consume
    must = np.maximum(need - later, 0.0) / dt_h
    cap_ev = np.where(ev_now & ~held, -np.minimum(must, fleet.w_max_consume), np.inf)
    tight = cap_ev < b.hi[:, 0] - _EPS
    b.hi[:, 0] = np.where(tight, np.maximum(cap_ev, b.lo[:, 0]), b.hi[:, 0])
    b.hi_b[tight, 0] = Binding.EV_DEPARTURE

    base = np.clip(base, b.lo, b.hi)
    inverter = pv | bat
    on = fleet.online & fleet.available
    q_lo = np.where(inverter & on, -fleet.var_max_absorb, fleet.q_var)
    q_hi = np.where(inverter & on, fleet.var_max_inject, fleet.q_var)
    return Flexibility(
        dt_s=dt_s,
        base=base,
        p_lo=b.lo,
        p_hi=b.hi,
        lo_binding=b.lo_b,
        hi_binding=b.hi_b,
        q_lo=np.minimum(q_lo, fleet.q_var),
        q_hi=np.maximum(q_hi, fleet.q_var),
        q_base=fleet.q_var.copy(),
        has_energy=has_energy,
        e0=e0,
        e_lo=e_lo,
        e_hi=e_hi,
        w=w,
        alpha=alpha,
        k_up=k_up,
        k_down=k_down,
        throughput_wh=budget,
    )
