"""AC power-flow check of a plan, on ``derms.grid``.

The grid rows are the grid engine's sensitivities (:func:`derms.grid.sensitivity.sensitivities`:
forward differences of the full AC power flow in one power-grid-model batch) restricted to the
DERs' buses, so they measure exactly what the check measures (branch loading in percent, bus
voltage in per unit). Every plan is then checked by a full AC power flow with the dispatch added
at the DERs' buses; if a branch or voltage limit is violated, the rows concerned are tightened by
the linearisation error and the plan is re-solved (sequential linear programming with an AC
feasibility check, as in distribution OPF practice, e.g. Dall'Anese, Zhu and Giannakis,
"Distributed optimal power flow for smart microgrids", IEEE Trans. Smart Grid 4(3), 2013). The
final plan can also be verified with pandapower's Newton-Raphson
(``derms.grid.powerflow.run_pandapower``) as an independent reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sps

from derms.grid.model import NetworkModel
from derms.grid.powerflow import PgmEngine, PowerFlowResult, run_pandapower
from derms.grid.sensitivity import sensitivities as grid_sensitivities
from derms.orchestration.grid import GridConstraints
from derms.orchestration.optimizer import solve
from derms.orchestration.problem import Problem
from derms.orchestration.solution import Solution

_W_PER_MW = 1e6


@dataclass(frozen=True, slots=True, eq=False)
class AcResult:
    """Row values (same order as the grid constraints' rows) from a full AC power flow."""

    values: np.ndarray
    violated: np.ndarray
    """Row positions outside their limits."""
    labels: tuple[str, ...]
    max_loading_percent: float
    vm_min_pu: float
    vm_max_pu: float
    engine: str

    @property
    def ok(self) -> bool:
        return not len(self.violated)


class AcNetwork:
    """A network model, its monitored branches and buses, and the buses DERs sit on.

    Grid columns are the model's bus positions (``model.bus_ids``), so a DER's ``bus`` in the
    fleet input is ``model.bus_positions([its bus id])``.
    """

    def __init__(
        self,
        model: NetworkModel,
        der_buses: np.ndarray,
        *,
        max_loading_percent: float = 100.0,
        v_min_pu: float = 0.95,
        v_max_pu: float = 1.05,
    ) -> None:
        self.model = model
        self.engine = PgmEngine(model)
        self.der_buses = np.unique(np.asarray(der_buses, np.int64))
        self.max_loading = max_loading_percent
        self.v_min, self.v_max = v_min_pu, v_max_pu
        base = self.engine.run()
        self.branch_ids = base.branch_ids
        self.n_bus = len(model.bus_ids)
        # Monitor energised buses below transmission voltage (the HV side is the slack's).
        vn = model.buses["vn_kv"].to_numpy(float) if "vn_kv" in model.buses else np.zeros(self.n_bus)
        self.monitored_bus = np.flatnonzero(np.isfinite(base.vm_pu) & (vn < 60.0))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(f"branch:{b} thermal" for b in self.branch_ids) + tuple(
            f"bus:{self.model.bus_ids[i]} voltage" for i in self.monitored_bus
        )

    def _rows(self, vm: np.ndarray, loading: np.ndarray) -> np.ndarray:
        return np.concatenate([loading, vm[..., self.monitored_bus]], axis=-1)

    def _limits(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nb = len(self.branch_ids)
        is_v = np.r_[np.zeros(nb, bool), np.ones(len(self.monitored_bus), bool)]
        return is_v, np.where(is_v, self.v_min, -np.inf), np.where(is_v, self.v_max, self.max_loading)

    def sensitivities(self, *, step_w: float | None = None, with_q: bool = True) -> GridConstraints:
        """Rows over the DER buses from :func:`derms.grid.sensitivity.sensitivities` at the
        operating point (``step_w``: its perturbation, default per voltage level)."""
        s = grid_sensitivities(self.engine, step_w=step_w)
        if not bool(s.base.converged):
            raise RuntimeError("the power flow at the operating point did not converge")
        v0 = self._rows(s.base.vm_pu, s.base.loading_pct)
        shape = (len(v0), self.n_bus)
        cols = self.der_buses

        def matrix(d_loading: np.ndarray, d_v: np.ndarray) -> sps.csr_matrix:
            d = np.vstack([d_loading, d_v[self.monitored_bus]])[:, cols] / _W_PER_MW
            r, c = np.nonzero(d)
            return sps.csr_matrix((d[r, c], (r, cols[c])), shape=shape)

        is_v, lo, hi = self._limits()
        return GridConstraints(
            sp=matrix(s.dloading_dp, s.dv_dp),
            sq=matrix(s.dloading_dq, s.dv_dq) if with_q else None,
            value0=v0,
            limit_lo=lo,
            limit_hi=hi,
            labels=self.labels,
            is_voltage=is_v,
        )

    def check(
        self,
        dp_bus: np.ndarray,
        dq_bus: np.ndarray | None = None,
        *,
        reference: bool = False,
        tol: float = 1e-6,
        limits: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> AcResult:
        """AC power flow with the dispatch added; ``reference`` uses pandapower instead of PGM.
        Rows are judged against ``limits`` (low, high per row) when given, else the network's
        own (thermal rating, voltage band)."""
        dq = np.zeros(self.n_bus) if dq_bus is None else dq_bus
        res: PowerFlowResult = (
            run_pandapower(self.model, dp_bus, dq) if reference else self.engine.run(dp_bus, dq)
        )
        if not bool(res.converged):
            raise RuntimeError("the AC power flow of the plan did not converge")
        values = self._rows(res.vm_pu, res.loading_pct)
        lo, hi = limits if limits is not None else self._limits()[1:]
        violated = np.flatnonzero((values > hi + tol) | (values < lo - tol))
        nb = len(self.branch_ids)
        vm = values[nb:]
        return AcResult(
            values=values,
            violated=violated,
            labels=tuple(self.labels[i] for i in violated),
            max_loading_percent=float(np.nanmax(values[:nb], initial=0.0)),
            vm_min_pu=float(np.nanmin(vm, initial=np.inf)),
            vm_max_pu=float(np.nanmax(vm, initial=-np.inf)),
            engine="pandapower" if reference else "power-grid-model",
        )


def bus_injections(problem: Problem, solution: Solution, n_bus: int) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch change per grid column (first step) [W, var]."""
    on = problem.bus >= 0
    dp = np.bincount(problem.bus[on], (solution.p_w[:, 0] - problem.flex.base[:, 0])[on], n_bus)
    dq = np.bincount(problem.bus[on], (solution.q_var - problem.flex.q_base)[on], n_bus)
    return dp, dq


def solve_checked(
    problem: Problem,
    network: AcNetwork,
    *,
    rounds: int = 4,
    margin: float = 1e-3,
    solver: Callable[[Problem], Solution] | None = None,
    **solve_options: Any,
) -> tuple[Solution, list[AcResult]]:
    """Solve, check by AC power flow, tighten violated rows by the linearisation error, repeat.

    ``solver`` solves a problem (default :func:`solve` with ``solve_options``; a re-plan passes
    its feeder re-optimization). The check is of the first step, the one dispatched, against
    the problem's own row limits (a row the caller relaxed, e.g. one already outside its limits
    at the operating point, is held to the relaxed limit). The last history entry says whether
    the returned plan passed."""
    if problem.grid is None:
        raise ValueError("solve_checked needs the problem's grid constraints")
    run = solver if solver is not None else (lambda p: solve(p, **solve_options))
    grid: GridConstraints = problem.grid
    limits = (problem.grid.limit_lo, problem.grid.limit_hi)
    history: list[AcResult] = []
    solution = run(problem)
    for attempt in range(rounds + 1):
        dp, dq = bus_injections(problem, solution, grid.n_bus)
        result = network.check(dp, dq, limits=limits)
        history.append(result)
        if result.ok or attempt == rounds:
            break
        predicted = grid.value0 + grid.sp @ dp + (grid.sq @ dq if grid.sq is not None else 0.0)
        error = result.values - predicted
        rows = result.violated
        over = result.values[rows] > grid.limit_hi[rows]
        hi_by = np.where(over, np.maximum(error[rows], 0.0) + margin * np.abs(grid.limit_hi[rows]), 0.0)
        lo_by = np.where(~over, np.maximum(-error[rows], 0.0) + margin * np.abs(grid.limit_lo[rows]), 0.0)
        grid = grid.tightened(rows, np.nan_to_num(lo_by), np.nan_to_num(hi_by))
        solution = run(replace(problem, grid=grid))
    return solution, history
