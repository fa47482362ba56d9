"""Seeded synthetic fleets on radial feeders, for benchmarks and tests.

Each feeder is a chain of ``buses_per_feeder`` medium-voltage buses with 1 km segments; its
sensitivities follow the linearised DistFlow model (Baran and Wu, "Network reconfiguration in
distribution systems for loss reduction and load balancing", IEEE Trans. Power Delivery 4(2),
1989): the voltage at bus ``b`` changes by ``(R_common P + X_common Q) / V_nom^2`` for an
injection at bus ``j``, where ``R_common`` is the resistance of the path shared by ``b`` and
``j`` from the substation, and a branch's flow changes by the injections downstream of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from derms.core.der import DerKind
from derms.orchestration.grid import GridConstraints
from derms.orchestration.inputs import FleetInput, Preferences, kind_code

_TIERS = np.array([0.04, 0.06, 0.08, 0.10, 0.15, 0.25])
"""Program payment tiers [currency/kWh] a DER's contract may pay for a deviation."""


@dataclass(frozen=True, slots=True, eq=False)
class Scenario:
    fleet: FleetInput
    prefs: Preferences
    grid: GridConstraints
    feeder_import_w: np.ndarray
    """Net import at each feeder head at the baseline [W]."""


def radial_grid(
    feeders: int,
    buses_per_feeder: int,
    head_import_w: np.ndarray,
    *,
    rating_w: float = 8e6,
    v_nom: float = 20e3,
    r_ohm_per_km: float = 0.2,
    x_ohm_per_km: float = 0.35,
    v0_pu: np.ndarray | None = None,
) -> GridConstraints:
    """Head-branch loading rows and the end-of-feeder voltage row of every feeder."""
    nb = feeders * buses_per_feeder
    depth = np.tile(np.arange(1, buses_per_feeder + 1), feeders).astype(float)
    bus = np.arange(nb)
    fdr = bus // buses_per_feeder
    # Row 2k: head branch of feeder k (loading %, import positive: injections reduce it).
    # Row 2k+1: voltage at the feeder end (pu): common path to the end = the bus's own depth.
    rows = np.r_[2 * fdr, 2 * fdr + 1]
    cols = np.r_[bus, bus]
    dp = np.r_[np.full(nb, -100.0 / rating_w), depth * r_ohm_per_km / v_nom**2]
    dq = np.r_[np.zeros(nb), depth * x_ohm_per_km / v_nom**2]
    shape = (2 * feeders, nb)
    v0 = np.full(feeders, 0.97) if v0_pu is None else v0_pu
    value0 = np.empty(2 * feeders)
    value0[0::2] = 100.0 * head_import_w / rating_w
    value0[1::2] = v0
    is_v = np.zeros(2 * feeders, bool)
    is_v[1::2] = True
    labels = tuple(
        label
        for k in range(feeders)
        for label in (f"line:feeder{k}-head thermal", f"bus:feeder{k}-end voltage")
    )
    return GridConstraints(
        sp=sp.csr_matrix((dp, (rows, cols)), shape=shape),
        sq=sp.csr_matrix((dq, (rows, cols)), shape=shape),
        value0=value0,
        limit_lo=np.where(is_v, 0.95, -100.0),
        limit_hi=np.where(is_v, 1.05, 100.0),
        labels=labels,
        is_voltage=is_v,
    )


def scenario(
    n: int, *, feeders: int = 100, buses_per_feeder: int = 10, steps: int = 1, seed: int = 0
) -> Scenario:
    """A mixed residential and C&I fleet: batteries, PV, EVs, thermostats, water heaters."""
    rng = np.random.default_rng(seed)
    kinds = np.array(
        [
            kind_code(DerKind.HOME_BATTERY),
            kind_code(DerKind.PV_INVERTER),
            kind_code(DerKind.EV_CHARGER),
            kind_code(DerKind.THERMOSTAT),
            kind_code(DerKind.WATER_HEATER),
        ],
        np.int8,
    )
    kind = rng.choice(kinds, size=n, p=[0.3, 0.25, 0.15, 0.2, 0.1])
    feeder = rng.integers(0, feeders, n).astype(np.int32)
    bus = (feeder * buses_per_feeder + rng.integers(0, buses_per_feeder, n)).astype(np.int32)
    bat = kind == kinds[0]
    pv = kind == kinds[1]
    ev = kind == kinds[2]
    th = kind == kinds[3]
    wh = kind == kinds[4]
    w_max = np.where(bat, 5000.0, np.where(pv, 6000.0, 0.0))
    w_cons = np.where(bat, 5000.0, np.where(ev, 7200.0, np.where(th, 3500.0, np.where(wh, 4500.0, 0.0))))
    p_w = np.where(pv, rng.uniform(0, 4000, n), 0.0)
    p_w = np.where(th, -rng.uniform(0, 3000, n), np.where(wh, -rng.choice([0.0, 4500.0], n), p_w))
    fleet = FleetInput.build(
        [f"der-{i}" for i in range(n)],
        kind=kind,
        feeder=feeder,
        bus=bus,
        p_w=p_w,
        soc=np.where(bat, rng.uniform(0.2, 0.9, n), np.nan),
        w_max=w_max,
        w_max_consume=w_cons,
        wh_max=np.where(bat, 13500.0, 0.0),
        var_max_inject=np.where(bat | pv, 0.44 * w_max, 0.0),
        var_max_absorb=np.where(bat | pv, 0.44 * w_max, 0.0),
        eta_charge=np.where(bat, 0.95, 1.0),
        eta_discharge=np.where(bat, 0.95, 1.0),
        ev_energy_needed_wh=np.where(ev, rng.uniform(5e3, 30e3, n), np.nan),
        ev_departure_s=np.where(ev, rng.integers(4, 48, n) * 900.0, np.nan),
        temp_c=np.where(th, rng.uniform(22.0, 24.0, n), np.nan),
        temp_out_c=np.where(th, 32.0, np.nan),
        r_k_per_w=np.where(th, 0.002, np.nan),
        c_j_per_k=np.where(th, 1.0e7, np.nan),
        cop=np.where(th, 3.0, 1.0),
        tank_wh=np.where(wh, rng.uniform(2e3, 8e3, n), np.nan),
        tank_max_wh=np.where(wh, 10e3, np.nan),
        draw_w=np.where(wh, 400.0, np.nan),
    )
    tier = rng.integers(0, len(_TIERS), n)
    prefs = Preferences.build(
        n,
        steps,
        cost_up=_TIERS[tier] + np.where(bat, 0.02, 0.0),
        cost_down=_TIERS[tier] * 0.5,
        soc_min=np.where(bat, 0.1, 0.0),
        comfort_min_c=np.where(th, 21.0, np.nan),
        comfort_max_c=np.where(th, 25.0, np.nan),
        reliability=rng.choice([0.8, 0.9, 0.95, 1.0], n),
    )
    # Feeder ratings and impedances scale with the fleet so that grid limits bind at every size.
    scale = n / (feeders * 1000)
    head = rng.uniform(0.5, 0.8, feeders) * 8e6 * scale
    grid = radial_grid(
        feeders,
        buses_per_feeder,
        head,
        rating_w=8e6 * scale,
        r_ohm_per_km=0.2 / scale,
        x_ohm_per_km=0.35 / scale,
        v0_pu=rng.uniform(0.97, 1.04, feeders),
    )
    return Scenario(fleet=fleet, prefs=prefs, grid=grid, feeder_import_w=head)
