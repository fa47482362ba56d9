"""Event-driven re-optimization of the affected feeders only.

When DERs go offline, under-deliver, report less SoC than assumed, a switch changes the
topology or an objective arrives, only the feeders concerned are re-solved: every other DER
keeps its setpoint, and the targets and grid rows are reduced by what those fixed DERs
already deliver. Lost flexibility is thus replaced by the cheapest available backups, which
for a feeder-level target are on the same feeder.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from derms.orchestration.flexibility import Binding, Flexibility
from derms.orchestration.optimizer import solve
from derms.orchestration.problem import Problem, Sense, Target
from derms.orchestration.solution import Explanation, Solution, shortfalls


def hold(flex: Flexibility, rows: np.ndarray, p_w: np.ndarray, why: Binding) -> Flexibility:
    """Flexibility with ``rows`` held at ``p_w`` (shape ``(len(rows), steps)``): offline devices
    at their measured output, under-delivering devices at what they deliver."""
    base, lo, hi = flex.base.copy(), flex.p_lo.copy(), flex.p_hi.copy()
    lob, hib = flex.lo_binding.copy(), flex.hi_binding.copy()
    base[rows] = lo[rows] = hi[rows] = p_w
    lob[rows] = hib[rows] = why
    return replace(flex, base=base, p_lo=lo, p_hi=hi, lo_binding=lob, hi_binding=hib)


def reoptimize(
    problem: Problem,
    previous: Solution,
    feeders: np.ndarray,
    *,
    group_by: str = "auto",
    solver: str = "auto",
    time_limit_s: float = 1.0,
) -> Solution:
    """Re-solve the DERs on ``feeders`` (feeder indices) with ``problem``'s updated flexibility,
    keeping every other DER at ``previous``'s setpoints."""
    inside = np.isin(problem.feeder, feeders)
    if not inside.any():
        return previous
    rows = np.flatnonzero(inside)
    out = ~inside
    f = problem.flex
    fixed_delta = np.where(out[:, None], previous.p_w - f.base, 0.0)
    targets = []
    for t in problem.targets:
        m_out = t.members & out
        if t.sense is Sense.DELIVER:
            rest = t.value_w - fixed_delta[m_out].sum(axis=0)
        else:
            rest = t.value_w - (f.p_hi[m_out] - previous.p_w[m_out]).sum(axis=0)
        targets.append(Target(t.objective_id, t.members[rows], rest, t.sense, t.priority))
    grid = problem.grid
    if grid is not None and grid.rows and out.any():
        on = out & (problem.bus >= 0)
        fixed_bus = np.bincount(problem.bus[on], fixed_delta[on, 0], grid.n_bus)
        used = grid.sp @ fixed_bus
        grid = replace(grid, value0=grid.value0 + used)
    sub = Problem(
        der_ids=tuple(problem.der_ids[i] for i in rows),
        flex=f.take(rows),
        cost_up=problem.cost_up[rows],
        cost_down=problem.cost_down[rows],
        reliability=problem.reliability[rows],
        feeder=problem.feeder[rows],
        bus=problem.bus[rows],
        targets=tuple(targets),
        grid=grid,
        prices=problem.prices,
        price_members=None if problem.price_members is None else problem.price_members[rows],
        cost_q=problem.cost_q,
    )
    part = solve(sub, group_by=group_by, solver=solver, time_limit_s=time_limit_s)
    p = previous.p_w.copy()
    p[rows] = part.p_w
    q = previous.q_var.copy()
    q[rows] = part.q_var
    prev, new = previous.why, part.why
    labels = prev.binding_labels + new.binding_labels
    code = prev.binding_code.copy()
    code[rows] = new.binding_code + len(prev.binding_labels)
    objective = prev.objective_code.copy()
    objective[rows] = new.objective_code
    detail = prev.detail_code.copy()
    detail[rows] = new.detail_code
    why = Explanation(code, labels, objective, prev.objective_ids, detail)
    return replace(
        part,
        p_w=p,
        q_var=q,
        shortfall_w=shortfalls(problem, p),
        why=why,
        status=f"reoptimized {len(feeders)} feeder(s): {part.status}",
    )
