"""Nodal hosting capacity: how much generation (or load) each bus can take on its own.

The hosting capacity of bus *b* at time *t* is the largest multiple of ``step_w`` that can be
injected (generation) or drawn (load) at *b* alone, on top of the operating point at *t*,
without violating a limit (EPRI, "Defining a Roadmap for Successful Implementation of a
Hosting Capacity Method for New York State", 3002008848, 2016: the *nodal* stream-lined
definition).  A limit that the operating point already violates must not get worse.

Two methods give the same answer when the margins are monotone in the injection:

* :func:`hosting_capacity` (fast): batched bisection over the step multiples, all buses and
  time points in one power-grid-model batch per bisection round, ``ceil(log2(max/step))``
  rounds;
* :func:`hosting_capacity_iterative` (reference): the classic sweep, one pandapower power flow
  per step until the first violation.

For a year of time points :func:`hosting_capacity_series` bins the operating points (load and
sgen scaling) to a grid and rounds them towards the harder case, so each distinct bin is
solved once and the result errs on the safe side.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
from power_grid_model import CalculationMethod

from derms.core.errors import ValidationFailed
from derms.grid.limits import Limits, margins
from derms.grid.model import NetworkModel
from derms.grid.powerflow import PgmEngine, PowerFlowResult, run_pandapower

_TOL = 1e-9


class Direction(StrEnum):
    GENERATION = "generation"
    LOAD = "load"


def _worst(
    res: PowerFlowResult, model: NetworkModel, limits: Limits, floor: tuple[np.ndarray, ...]
) -> np.ndarray:
    """Per step: the smallest headroom left after allowing each limit its base violation."""
    out = np.full(np.atleast_2d(res.vm_pu).shape[0], np.inf)
    for m, f in zip(margins(res, model, limits), floor, strict=True):
        m2 = np.atleast_2d(m)
        worst = (m2 - np.minimum(f, 0.0)).min(axis=1) if m2.shape[1] else out
        out = np.minimum(out, worst)
    out[~np.atleast_1d(res.converged)] = -np.inf
    return out


def hosting_capacity(
    engine: PgmEngine,
    limits: Limits,
    *,
    direction: Direction | str = Direction.GENERATION,
    buses: np.ndarray | list[str] | None = None,
    load_scale: np.ndarray | float | None = None,
    sgen_scale: np.ndarray | float | None = None,
    p_inj_w: np.ndarray | None = None,
    max_w: float = 20e6,
    step_w: float = 100e3,
    power_factor: float = 1.0,
    time_block: int = 16,
) -> np.ndarray:
    """Nodal hosting capacity [W], shape (n_time, n_selected_bus).

    ``buses`` defaults to every bus a substation energises.  ``load_scale``/``sgen_scale`` are
    scalars or (n_time,) profiles; ``p_inj_w`` an optional (n_time, n_bus) base injection.
    ``power_factor`` (< 1) adds reactive power absorbed by generation / drawn by load.
    """
    d = Direction(direction)
    model = engine.model
    if buses is None:
        buses = model.bus_ids[model.buses["feeder_index"].to_numpy() >= 0].to_numpy()
    pos = model.bus_positions(buses)
    if not 0 < step_w <= max_w:
        raise ValidationFailed(["need 0 < step_w <= max_w"])
    if not 0 < power_factor <= 1:
        raise ValidationFailed(["power_factor must be in (0, 1]"])
    n_time = max(
        np.size(load_scale) if load_scale is not None else 1,
        np.size(sgen_scale) if sgen_scale is not None else 1,
    )
    if p_inj_w is not None:
        n_time = max(n_time, np.atleast_2d(p_inj_w).shape[0])
    ls = None if load_scale is None else np.broadcast_to(np.asarray(load_scale, float), (n_time,))
    ss = None if sgen_scale is None else np.broadcast_to(np.asarray(sgen_scale, float), (n_time,))
    base_p = (
        np.zeros((n_time, len(model.bus_ids)))
        if p_inj_w is None
        else np.broadcast_to(np.atleast_2d(np.asarray(p_inj_w, float)), (n_time, len(model.bus_ids)))
    )
    out = np.zeros((n_time, len(pos)))
    for a in range(0, n_time, time_block):
        b = min(a + time_block, n_time)
        out[a:b] = _bisect(
            engine,
            limits,
            d,
            pos,
            base_p[a:b],
            None if ls is None else ls[a:b],
            None if ss is None else ss[a:b],
            max_w,
            step_w,
            power_factor,
        )
    return out


def _bisect(
    engine: PgmEngine,
    limits: Limits,
    d: Direction,
    pos: np.ndarray,
    base_p: np.ndarray,
    ls: np.ndarray | None,
    ss: np.ndarray | None,
    max_w: float,
    step_w: float,
    pf: float,
) -> np.ndarray:
    model = engine.model
    nt, nb = base_p.shape[0], len(pos)
    sign = 1.0 if d is Direction.GENERATION else -1.0
    q_per_p = -math.tan(math.acos(pf))  # generation absorbs, load draws: both -Q for +P convention
    base = engine.run_batch(base_p, load_scale=ls, sgen_scale=ss)
    floor = tuple(np.atleast_2d(m) for m in margins(base, model, limits))
    # scenario s = (time t, bus k), t-major
    t_of = np.repeat(np.arange(nt), nb)
    k_of = np.tile(np.arange(nb), nt)
    floor_s = tuple(f[t_of] for f in floor)
    k_max = math.floor(max_w / step_w + _TOL)
    lo = np.zeros(nt * nb, dtype=np.int64)
    hi = np.full(nt * nb, k_max + 1, dtype=np.int64)  # hi: known infeasible (k_max + 1 = never tried)

    def feasible(idx: np.ndarray, k: np.ndarray) -> np.ndarray:
        p = base_p[t_of[idx]].copy()
        q = np.zeros_like(p)
        x = sign * k * step_w
        p[np.arange(len(idx)), pos[k_of[idx]]] += x
        q[np.arange(len(idx)), pos[k_of[idx]]] += abs(x) * q_per_p
        res = engine.run_batch(
            p,
            q,
            load_scale=None if ls is None else ls[t_of[idx]],
            sgen_scale=None if ss is None else ss[t_of[idx]],
            method=CalculationMethod.iterative_current,
        )
        return _worst(res, model, limits, tuple(f[idx] for f in floor_s)) >= -_TOL

    # first try the maximum, then bisect between lo (feasible) and hi (infeasible)
    top = feasible(np.arange(nt * nb), np.full(nt * nb, k_max))
    lo[top] = k_max
    hi[~top] = k_max
    while True:
        active = np.flatnonzero(hi - lo > 1)
        if not len(active):
            break
        mid = (lo[active] + hi[active]) // 2
        ok = feasible(active, mid)
        lo[active[ok]] = mid[ok]
        hi[active[~ok]] = mid[~ok]
    return (lo * step_w).reshape(nt, nb)


def hosting_capacity_iterative(
    model: NetworkModel,
    limits: Limits,
    bus_id: str,
    *,
    direction: Direction | str = Direction.GENERATION,
    load_scale: float | None = None,
    sgen_scale: float | None = None,
    max_w: float = 20e6,
    step_w: float = 100e3,
    power_factor: float = 1.0,
) -> float:
    """Reference hosting capacity [W] of one bus: raise the injection step by step with
    pandapower until the first violation; return the last step without one."""
    d = Direction(direction)
    sign = 1.0 if d is Direction.GENERATION else -1.0
    q_per_p = -math.tan(math.acos(power_factor))
    j = model.bus_positions([bus_id])[0]
    n = len(model.bus_ids)
    base = run_pandapower(model, load_scale=load_scale, sgen_scale=sgen_scale)
    floor = margins(base, model, limits)
    k_max = math.floor(max_w / step_w + _TOL)
    for k in range(1, k_max + 1):
        p = np.zeros(n)
        q = np.zeros(n)
        p[j] = sign * k * step_w
        q[j] = k * step_w * q_per_p
        res = run_pandapower(model, p, q, load_scale=load_scale, sgen_scale=sgen_scale)
        if _worst(res, model, limits, floor)[0] < -_TOL:
            return (k - 1) * step_w
    return k_max * step_w


def hosting_capacity_series(
    engine: PgmEngine,
    limits: Limits,
    load_scale: np.ndarray,
    *,
    sgen_scale: np.ndarray | None = None,
    resolution: float = 0.02,
    direction: Direction | str = Direction.GENERATION,
    **kwargs: float,
) -> np.ndarray:
    """Hosting capacity [W] for a long profile, shape (n_time, n_bus_selected).

    Load and sgen scaling are rounded to multiples of ``resolution`` towards the harder case
    (generation: less load, more sgen; load: the reverse), each distinct bin is solved once by
    :func:`hosting_capacity`, and the results are mapped back to the time points.
    """
    d = Direction(direction)
    ls = np.asarray(load_scale, float)
    ss = np.zeros_like(ls) if sgen_scale is None else np.broadcast_to(np.asarray(sgen_scale, float), ls.shape)
    down, up = (np.floor, np.ceil) if d is Direction.GENERATION else (np.ceil, np.floor)
    bins = np.stack([down(ls / resolution), up(ss / resolution)], axis=1).astype(np.int64)
    uniq, inverse = np.unique(bins, axis=0, return_inverse=True)
    hc = hosting_capacity(
        engine,
        limits,
        direction=d,
        load_scale=uniq[:, 0] * resolution,
        sgen_scale=uniq[:, 1] * resolution if sgen_scale is not None else None,
        **kwargs,  # type: ignore[arg-type]
    )
    return hc[inverse.ravel()]
