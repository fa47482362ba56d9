"""Greedy merit-order dispatch: the fallback when the LP fails or runs out of time, and the
naive baseline the optimizer is compared against.

For each target in priority order, members are dispatched cheapest first up to their device
limits until the target is met (the classic economic merit order). It knows nothing of the
grid; with ``respect_grid`` each feeder's dispatch is then scaled back uniformly until every
linearised grid row holds (a safe but not optimal repair). It plans the first step only (its
power boxes hold each device's energy limits); later steps of a horizon stay at the baseline,
because step-by-step merit order would spend energy the devices may no longer have.
"""

from __future__ import annotations

import numpy as np

from derms.orchestration.problem import Problem, Sense
from derms.orchestration.solution import Explanation, Solution, shortfalls


def _fill(order: np.ndarray, caps: np.ndarray, need: float) -> np.ndarray:
    c = caps[order]
    before = np.cumsum(c) - c
    out = np.zeros_like(caps)
    out[order] = np.clip(need - before, 0.0, c)
    return out


def _grid_backoff(problem: Problem, delta: np.ndarray) -> np.ndarray:
    grid = problem.grid
    if grid is None or not grid.rows:
        return delta
    on = problem.bus >= 0
    feeders = np.unique(problem.feeder)
    scale = np.ones(len(feeders))
    fidx = np.searchsorted(feeders, problem.feeder)
    for k in range(len(feeders)):
        mine = on & (fidx == k)
        if not mine.any():
            continue
        change = grid.sp @ np.bincount(problem.bus[mine], delta[mine], grid.n_bus)
        with np.errstate(divide="ignore", invalid="ignore"):
            hi = np.where(change > 1e-12, grid.room_hi / change, np.inf)
            lo = np.where(change < -1e-12, grid.room_lo / change, np.inf)
        scale[k] = float(np.clip(min(hi.min(initial=np.inf), lo.min(initial=np.inf)), 0.0, 1.0))
    return delta * scale[fidx]


def merit_order(problem: Problem, *, reason: str = "", respect_grid: bool = True) -> Solution:
    """Greedy dispatch of the first step; later steps at the baseline."""

    f = problem.flex
    delta = np.zeros((problem.n, problem.steps))
    used_up = np.zeros(problem.n)
    for tgt in sorted(problem.targets, key=lambda x: x.priority):
        if np.isnan(tgt.value_w[0]) or tgt.sense is not Sense.DELIVER:
            continue
        m = tgt.members
        need = tgt.value_w[0] - delta[m, 0].sum()
        if need <= 0:
            continue
        caps = np.where(m, np.maximum(f.up[:, 0] - used_up, 0.0), 0.0)
        order = np.flatnonzero(m)[np.lexsort((-problem.reliability[m], problem.cost_up[m]))]
        add = _fill(order, caps, need)
        used_up += add
        delta[:, 0] += add
    if respect_grid:
        delta[:, 0] = _grid_backoff(problem, delta[:, 0])
    p = f.base + delta
    cost = float(
        (
            np.maximum(delta, 0) * problem.cost_up[:, None]
            - np.minimum(delta, 0) * problem.cost_down[:, None]
        ).sum()
        * f.dt_s
        / 3.6e6
    )
    up0 = f.up[:, 0]
    d0 = delta[:, 0]
    binding = ((d0 > 1e-3) & (d0 >= up0 - 1e-3)).astype(np.int32)
    objective = np.full(problem.n, -1, np.int32)
    for k in sorted(range(len(problem.targets)), key=lambda k: -problem.targets[k].priority):
        objective[problem.targets[k].members & (d0 > 1e-3)] = k
    detail = np.where(d0 > 1e-3, 1, np.where(d0 < -1e-3, 2, np.where(up0 > 1e-3, 3, 0))).astype(np.int8)
    why = Explanation(
        binding,
        ("", "merit order: device limit"),
        objective,
        tuple(t.objective_id for t in problem.targets),
        detail,
    )
    return Solution(
        p_w=p,
        q_var=f.q_base.copy(),
        status=f"fallback: {reason}" if reason else "greedy",
        solver="greedy-merit-order",
        cost=cost,
        shortfall_w=shortfalls(problem, p),
        why=why,
    )
