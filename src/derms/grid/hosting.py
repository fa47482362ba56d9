"""Nodal hosting capacity: how much generation (or load) each bus can take on its own.

The hosting capacity of bus *b* at time *t* is the largest multiple of ``step_w`` that can be
injected (generation) or drawn (load) at *b* alone, on top of the operating point at *t*,
without violating a limit (EPRI, "Defining a Roadmap for Successful Implementation of a
Hosting Capacity Method for New York State", 3002008848, 2016: the *nodal* stream-lined
definition).  A limit that the operating point already violates must not get worse.

Two methods give the same answer when the headroom of each limit is monotone in the injection:

* :func:`hosting_capacity` (fast): a bracketing search over the step multiples, all buses and
  time points in one power-grid-model batch per round (same constructed model, batch update
  datasets).  Round one adds one step at every bus: with the operating point it gives each
  limit's slope, a linear-sensitivity estimate of where each bus hits its first limit.  Each
  later round tests the estimate ``k`` and ``k + 1`` per bus and re-estimates from the slopes
  at the ends of the bracket (a secant/Newton step per limit); a bus is done when its bracket
  is one step wide, typically after three or four rounds;
* :func:`hosting_capacity_iterative` (reference): the classic sweep, one pandapower power flow
  per step until the first violation.

For a year of time points :func:`hosting_capacity_series` bins the operating points (load and
sgen scaling) to a grid and rounds them towards the harder case, so each distinct bin is
solved once and the result errs on the safe side.
"""

from __future__ import annotations

import itertools
import math
from enum import StrEnum

import numpy as np
from power_grid_model import CalculationMethod

from derms.core.errors import ValidationFailed
from derms.grid.limits import Limits, margins
from derms.grid.model import NetworkModel
from derms.grid.powerflow import PgmEngine, PowerFlowResult, run_pandapower

_TOL = 1e-9
_ESTIMATE_ROUNDS = 6
"""Rounds of estimated steps before the search falls back to bisection."""


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


def _signed_margins(res: PowerFlowResult, model: NetworkModel, limits: Limits) -> np.ndarray:
    """(steps, n_limit) headroom: upper and lower voltage, thermal, reverse flow.

    Thermal limits appear twice, for flow in either direction (headroom ``L - l`` for the
    direction the power flows, ``L + l`` for the other): each is nearly linear in an
    injection that reverses the flow, where ``L - |l|`` has a kink.  The smaller of the two
    is the thermal margin of :func:`derms.grid.limits.margins`.
    """
    up, down, th, rf = (np.atleast_2d(m) for m in margins(res, model, limits))
    other = np.where(np.isfinite(th), 2 * limits.max_loading_pct - th, np.inf)
    fwd = np.atleast_2d(res.p_from_w) >= 0
    return np.concatenate([up, down, np.where(fwd, th, other), np.where(fwd, other, th), rf], axis=1)


def _allowance(base: np.ndarray, n_branch: int, n_bus: int) -> np.ndarray:
    """Each limit's base violation (negative part of the base headroom), which a step may use;
    both directions of a branch get its magnitude's allowance."""
    out = np.minimum(base, 0.0)
    f, r = slice(2 * n_bus, 2 * n_bus + n_branch), slice(2 * n_bus + n_branch, 2 * n_bus + 2 * n_branch)
    both = np.minimum(out[:, f], out[:, r])
    out[:, f] = both
    out[:, r] = both
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
    for eng, cols, sub_pos, parent_pos in _parts(engine, pos):
        for a in range(0, n_time, time_block):
            b = min(a + time_block, n_time)
            out[a:b, cols] = _search(
                eng,
                limits,
                d,
                sub_pos,
                base_p[a:b][:, parent_pos],
                None if ls is None else ls[a:b],
                None if ss is None else ss[a:b],
                max_w,
                step_w,
                power_factor,
            )
    return out


def _parts(engine: PgmEngine, pos: np.ndarray) -> list[tuple[PgmEngine, np.ndarray, np.ndarray, np.ndarray]]:
    """Where to solve each selected bus: (engine, columns of ``pos``, their bus positions in
    the engine's model, the parent positions of all its buses).  The parts that only ideal
    external grids join (:meth:`PgmEngine.islands`) are solved on their own, which makes every
    scenario cheaper; a bus that no part energises stays with the whole network."""
    everything = np.arange(len(engine.model.bus_ids))
    out = []
    left = np.ones(len(pos), dtype=bool)
    for eng, parent in engine.islands():
        fed = eng.model.buses["feeder_index"].to_numpy() >= 0
        lookup = dict(zip(parent[fed].tolist(), np.flatnonzero(fed).tolist(), strict=True))
        cols = np.array([j for j, p in enumerate(pos.tolist()) if left[j] and p in lookup], dtype=np.int64)
        if len(cols):
            out.append((eng, cols, np.array([lookup[p] for p in pos[cols].tolist()], dtype=np.int64), parent))
            left[cols] = False
    if left.any():
        out.append((engine, np.flatnonzero(left), pos[left], everything))
    return out


def _search(
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
    """The last feasible step multiple of every (time, bus) scenario, by bracketing.

    Every scenario keeps a bracket ``lo`` (feasible) < ``hi`` (infeasible) with the headroom of
    every limit at both ends (see :class:`_Brackets`).  The first round tests the top of the
    range; each later round estimates the crossing ``k`` per scenario and tests ``k`` and
    ``k + 1`` together, all scenarios in one power-grid-model batch.  A scenario is done when
    its bracket is one step wide.
    """
    model = engine.model
    nt, nb = base_p.shape[0], len(pos)
    ns = nt * nb
    sign = 1.0 if d is Direction.GENERATION else -1.0
    q_per_p = -math.tan(math.acos(pf))  # generation absorbs, load draws: both -Q for +P convention
    base = engine.run_batch(base_p, load_scale=ls, sgen_scale=ss)
    allow = _allowance(_signed_margins(base, model, limits), len(engine.branch_ids), len(model.bus_ids))
    # scenario s = (time t, bus k), t-major
    t_of = np.repeat(np.arange(nt), nb)
    k_of = np.tile(np.arange(nb), nt)
    k_max = math.floor(max_w / step_w + _TOL)

    def run(idx: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Headroom (len(idx), n_limit) with ``k`` steps at each scenario's bus."""
        p = base_p[t_of[idx]].copy()
        q = np.zeros_like(p)
        x = sign * k * step_w
        rows = np.arange(len(idx))
        p[rows, pos[k_of[idx]]] += x
        q[rows, pos[k_of[idx]]] += abs(x) * q_per_p
        res = engine.run_batch(
            p,
            q,
            load_scale=None if ls is None else ls[t_of[idx]],
            sgen_scale=None if ss is None else ss[t_of[idx]],
            method=CalculationMethod.iterative_current,
            # a few hundred small scenarios per call: threads gain little on an idle machine
            # and lose on a busy one (measured on mv_oberrhein: 0.11 s vs 0.19 s at load 6)
            threads=-1,
        )
        head = _signed_margins(res, model, limits) - allow[t_of[idx]]
        head[~res.converged] = -np.inf
        return head

    h0 = (_signed_margins(base, model, limits) - allow)[t_of]  # at step 0
    br = _Brackets(h0, k_max)
    every = np.arange(ns)
    # first round: one step at every bus, which with step 0 gives each limit's slope there
    br.record(every, np.zeros(ns, dtype=np.int64), h0, (np.ones(ns, dtype=bool), run(every, np.ones(ns))))
    for rounds in itertools.count():
        active = np.flatnonzero(br.hi - br.lo > 1)
        if not len(active):
            break
        k, pair = br.next_steps(active, bisect=rounds >= _ESTIMATE_ROUNDS, pairs=rounds > 0)
        head = run(np.concatenate([active, active[pair]]), np.concatenate([k, k[pair] + 1]))
        br.record(active, k, head[: len(active)], (pair, head[len(active) :]))
    return (br.lo * step_w).reshape(nt, nb)


class _Brackets:
    """Per scenario: ``lo`` (feasible step) < ``hi`` (infeasible step), the headroom of every
    limit at both, and where known the headroom's change per step there (from a ``k, k + 1``
    pair, or from one step and the slope at ``lo``).

    The next step to test is the first limit's zero crossing, estimated per limit from the
    slope at ``hi`` (a backward secant step: the limits violated at ``hi``), else the slope at
    ``lo``, else by linear interpolation between ``lo`` and ``hi`` (regula falsi); bisection
    where nothing crosses with finite values (a failed power flow at ``hi``) or after
    ``_ESTIMATE_ROUNDS`` rounds.
    """

    def __init__(self, h0: np.ndarray, k_max: int) -> None:
        ns = h0.shape[0]
        self.lo = np.zeros(ns, dtype=np.int64)
        self.hi = np.full(ns, k_max + 1, dtype=np.int64)  # k_max + 1: beyond the range, never tested
        self.h_lo = h0
        self.h_hi = np.full_like(h0, -np.inf)
        self.s_lo = np.full_like(h0, np.nan)
        self.s_hi = np.full_like(h0, np.nan)
        self.k_max = k_max

    def next_steps(self, active: np.ndarray, *, bisect: bool, pairs: bool) -> tuple[np.ndarray, np.ndarray]:
        """The step ``k`` to test per active scenario, and whether to test ``k + 1`` too
        (where ``pairs``: the first estimate is too far off to be worth a pair)."""
        lo, hi = self.lo[active], self.hi[active]
        x = np.full(len(active), np.nan) if bisect else self._crossing(active)
        fallback = np.where(hi > self.k_max, self.k_max, (lo + hi) // 2)
        k = np.clip(np.where(np.isfinite(x), np.floor(x + _TOL), fallback), lo + 1, hi - 1).astype(np.int64)
        return k, pairs & np.isfinite(x) & (k + 1 < hi)

    def _crossing(self, a: np.ndarray) -> np.ndarray:
        """Estimated step [fractional] where the first limit runs out; NaN where unknown."""
        lo, hi = self.lo[a, None], self.hi[a, None]
        h_lo, h_hi, s_lo, s_hi = self.h_lo[a], self.h_hi[a], self.s_lo[a], self.s_hi[a]
        crosses = np.isfinite(h_hi) & (h_hi < -_TOL)
        open_top = ~np.isfinite(h_hi).any(axis=1, keepdims=True)  # hi untested or failed
        with np.errstate(divide="ignore", invalid="ignore"):
            chord = lo + (hi - lo) * np.maximum(h_lo, 0.0) / (h_lo - h_hi)
            from_lo = lo + np.maximum(h_lo, 0.0) / -s_lo
            from_hi = hi + h_hi / -s_hi
        # a limit that crosses but still improves at lo (e.g. a line whose flow reverses)
        # is left to the slope at hi
        x = np.where(crosses & np.isnan(s_lo), chord, np.inf)
        x = np.where((s_lo < 0) & (crosses | open_top), from_lo, x)
        x = np.where(crosses & (s_hi < 0), from_hi, x)
        x = np.where(np.isnan(x), np.inf, x).min(axis=1)
        return np.where(np.isfinite(x), x, np.nan)

    def record(
        self,
        active: np.ndarray,
        k: np.ndarray,
        head: np.ndarray,
        pair: tuple[np.ndarray, np.ndarray] | None,
    ) -> None:
        """Narrow the brackets of ``active`` with the headroom at ``k`` and, where ``pair``
        says so, at ``k + 1``."""
        ok = head.min(axis=1) >= -_TOL
        # a single step's slope from the quadratic through lo with its slope:
        # f'(k) = 2 (f(k) - f(lo)) / (k - lo) - f'(lo)
        with np.errstate(invalid="ignore", divide="ignore"):
            dist = (k - self.lo[active])[:, None]
            slope = 2 * (head - self.h_lo[active]) / dist - self.s_lo[active]
        ok1 = np.zeros(len(active), dtype=bool)
        head1 = head
        if pair is not None:
            has, h1 = pair
            with np.errstate(invalid="ignore"):  # inf - inf: a limit that does not apply
                slope[has] = h1 - head[has]
            ok1[has] = h1.min(axis=1) >= -_TOL
            head1 = head.copy()
            head1[has] = h1
        # k infeasible: hi = k.  k feasible: lo = k, or lo = k + 1 when that is feasible too,
        # and hi = k + 1 when it is not (then the scenario is done)
        bad = active[~ok]
        self.hi[bad], self.h_hi[bad], self.s_hi[bad] = k[~ok], head[~ok], slope[~ok]
        up = ok & ok1
        good = active[ok]
        self.lo[good] = k[ok] + up[ok]
        self.h_lo[good] = np.where(up[ok, None], head1[ok], head[ok])
        self.s_lo[good] = slope[ok]
        if pair is not None:
            done = ok & pair[0] & ~ok1
            self.hi[active[done]] = k[done] + 1


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
