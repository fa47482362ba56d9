"""The optimizer's result: setpoints per DER and step, and why each has its value."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from derms.orchestration.problem import Problem, Sense

DETAILS = (
    "no headroom",
    "dispatched up",
    "dispatched down",
    "standby: backup at a higher cost or not needed",
)


@dataclass(frozen=True, slots=True, eq=False)
class Explanation:
    """Why each DER got its first-step setpoint, as integer codes into label tables (cheap at 100k)."""

    binding_code: np.ndarray
    binding_labels: tuple[str, ...]
    objective_code: np.ndarray
    """Index into ``objective_ids``, ``-1`` for none."""
    objective_ids: tuple[str, ...]
    detail_code: np.ndarray
    """Index into :data:`DETAILS`."""

    def binding(self, i: int) -> str:
        return self.binding_labels[int(self.binding_code[i])]

    def objective(self, i: int) -> str | None:
        k = int(self.objective_code[i])
        return None if k < 0 else self.objective_ids[k]

    def detail(self, i: int) -> str:
        return DETAILS[int(self.detail_code[i])]


@dataclass(frozen=True, slots=True, eq=False)
class Solution:
    """Device setpoints and how they were obtained.

    ``p_w`` has shape ``(n, steps)`` (absolute setpoints; the first column is what is sent),
    ``q_var`` shape ``(n,)``. ``binding`` and ``objective`` are per DER for the first step.
    """

    p_w: np.ndarray
    q_var: np.ndarray
    status: str
    solver: str
    cost: float
    shortfall_w: dict[str, np.ndarray]
    why: Explanation
    groups: int = 0
    rows: int = 0
    build_s: float = 0.0
    solve_s: float = 0.0
    group_of: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def shortfalls(problem: Problem, p: np.ndarray) -> dict[str, np.ndarray]:
    """Unmet part of each target per step [W]."""
    f = problem.flex
    out = {}
    for tgt in problem.targets:
        m = tgt.members
        got = (p[m] - f.base[m]).sum(axis=0) if tgt.sense is Sense.DELIVER else (f.p_hi[m] - p[m]).sum(axis=0)
        out[tgt.objective_id] = np.where(np.isnan(tgt.value_w), 0.0, np.maximum(tgt.value_w - got, 0.0))
    return out


def plan_cost(problem: Problem, p: np.ndarray) -> float:
    """The LP's objective evaluated device by device for setpoints ``p`` ``(n, steps)``:
    deviation costs, prices on net injection and target shortfall penalties (currency)."""
    f = problem.flex
    dt_kh = f.dt_s / 3.6e6
    d = p - f.base
    price = np.zeros(f.steps) if problem.prices is None else problem.prices
    members = np.ones(f.n, bool) if problem.price_members is None else problem.price_members
    priced = price[None, :] * members[:, None]
    up, down = np.maximum(d, 0.0), np.maximum(-d, 0.0)
    cost = ((problem.cost_up[:, None] - priced) * up + (problem.cost_down[:, None] + priced) * down).sum()
    short = shortfalls(problem, p)
    penalty = sum(float((short[t.objective_id] * t.penalties()).sum()) for t in problem.targets)
    return float((cost + penalty) * dt_kh)
