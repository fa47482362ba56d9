"""Dispatch benchmark: aggregated HiGHS LP vs a straightforward cvxpy formulation.

For 1,000, 10,000 and 100,000 DERs on 100 synthetic radial feeders (seeded, see
``derms.orchestration.synthetic``) it times

* a single-interval dispatch (flexibility + LP + disaggregation + explanation) against the
  per-DER cvxpy model of the same problem solved by HiGHS through cvxpy (compile + solve);
* a 96-step (24 h at 15 min) horizon (fleets up to ``--horizon-max``) against the per-DER cvxpy
  horizon model where that fits in memory and time (``--baseline-horizon-max``), with the
  plan's largest energy-band violation per device (deliverability) and its cost evaluated
  device by device;
* re-optimization of the affected feeders after losing 200 dispatched devices.

It prints one JSON document: medians over ``--repeats`` runs, the ratio cvxpy/ours and the
relative objective gap (ours - cvxpy) / |cvxpy|. ``--quick`` runs 1,000 DERs only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from derms.orchestration.flexibility import Binding, flexibility
from derms.orchestration.optimizer import solve
from derms.orchestration.problem import Problem, Target
from derms.orchestration.reoptimize import hold, reoptimize
from derms.orchestration.solution import plan_cost
from derms.orchestration.synthetic import scenario


def build(n: int, steps: int, seed: int = 0, feeders: int = 100) -> tuple[Problem, float]:
    """The benchmark problem and the time spent computing flexibility [s]."""
    sc = scenario(n, feeders=feeders, buses_per_feeder=10, steps=steps, seed=seed)
    t0 = time.perf_counter()
    f = flexibility(sc.fleet, sc.prefs, dt_s=900.0, steps=steps)
    flex_s = time.perf_counter() - t0
    if steps == 1:
        value = np.array([0.3 * f.up[:, 0].sum()])
        prices = None
    else:
        # An evening capacity event (17:00-20:00) on a day-ahead price curve.
        k = np.arange(steps)
        value = np.where((k >= 68) & (k < 80), 0.2 * f.up[:, 0].sum(), np.nan)
        prices = 0.12 + 0.08 * np.sin((k - 40) / steps * 2 * np.pi)
    problem = Problem.of(
        sc.fleet,
        sc.prefs,
        f,
        targets=(Target("capacity", np.ones(n, bool), value),),
        grid=sc.grid,
        prices=prices,
    )
    return problem, flex_s


def cvxpy_baseline(problem: Problem) -> tuple[float, float]:
    """Per-DER model of the same LP in cvxpy, solved by HiGHS; returns (seconds, cost)."""
    t0 = time.perf_counter()
    f, n, steps = problem.flex, problem.n, problem.steps
    dt_h = f.dt_s / 3600.0
    grid = problem.grid
    assert grid is not None
    u = cp.Variable((n, steps), nonneg=True)
    v = cp.Variable((n, steps), nonneg=True)
    cons: list[Any] = [u <= np.maximum(f.up, 0.0), v <= np.maximum(f.down, 0.0)]
    price = np.zeros(steps) if problem.prices is None else problem.prices
    cost = cp.sum(cp.multiply(((problem.cost_up[:, None] - price[None, :]) * dt_h / 1000.0), u)) + cp.sum(
        cp.multiply(((problem.cost_down[:, None] + price[None, :]) * dt_h / 1000.0), v)
    )
    incidence = sp.csr_matrix((np.ones(n), (problem.bus, np.arange(n))), shape=(grid.n_bus, n))
    a_p = (grid.sp @ incidence).tocsr()
    change = a_p @ (u - v)
    if steps == 1:
        qi = cp.Variable(n, nonneg=True)
        qa = cp.Variable(n, nonneg=True)
        cons += [qi <= f.q_hi - f.q_base, qa <= f.q_base - f.q_lo]
        cost = cost + cp.sum(qi + qa) * problem.cost_q * dt_h / 1000.0
        assert grid.sq is not None
        change = change + cp.reshape((grid.sq @ incidence) @ (qi - qa), (grid.rows, 1), order="F")
    cons += [change >= grid.room_lo[:, None], change <= grid.room_hi[:, None]]
    for tgt in problem.targets:
        active = np.flatnonzero(~np.isnan(tgt.value_w))
        m = np.flatnonzero(tgt.members)
        slack = cp.Variable(len(active), nonneg=True)
        delivered = cp.sum(u[m][:, active] - v[m][:, active], axis=0)
        cons.append(delivered + slack >= tgt.value_w[active])
        cost = cost + cp.sum(cp.multiply(slack, tgt.penalties()[active])) * dt_h / 1000.0
    if steps > 1:
        e_rows = np.flatnonzero(f.has_energy)
        e = cp.Variable((len(e_rows), steps))
        a = f.alpha[e_rows][:, None]
        flow = dt_h * (
            cp.multiply(f.k_up[e_rows][:, None], u[e_rows])
            - cp.multiply(f.k_down[e_rows][:, None], v[e_rows])
        )
        cons += [
            e[:, :1] == a * f.e0[e_rows][:, None] + f.w[e_rows, :1] - flow[:, :1],
            e[:, 1:] == cp.multiply(a, e[:, :-1]) + f.w[e_rows, 1:] - flow[:, 1:],
            e >= np.where(np.isfinite(f.e_lo[e_rows]), f.e_lo[e_rows], -1e12),
            e <= np.where(np.isfinite(f.e_hi[e_rows]), f.e_hi[e_rows], 1e12),
        ]
        lim = np.flatnonzero(np.isfinite(f.throughput_wh))
        if len(lim):
            cons.append(
                cp.sum(dt_h * cp.multiply(f.k_up[lim][:, None], u[lim]), axis=1) <= f.throughput_wh[lim]
            )
    prob = cp.Problem(cp.Minimize(cost), cons)
    prob.solve(solver=cp.HIGHS)
    if prob.status != cp.OPTIMAL:
        raise RuntimeError(f"cvxpy baseline: {prob.status}")
    return time.perf_counter() - t0, float(prob.value)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def run_case(n: int, steps: int, repeats: int, baseline: bool) -> dict[str, Any]:
    problem, flex_s = build(n, steps)
    ours, total = [], []
    sol = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        sol = solve(problem, time_limit_s=5.0 if steps == 1 else 1800.0)
        ours.append(time.perf_counter() - t0)
        total.append(ours[-1] + flex_s)
    assert sol is not None
    out: dict[str, Any] = {
        "ders": n,
        "steps": steps,
        "groups": sol.groups,
        "lp_rows": sol.rows,
        "solver": sol.solver,
        "status": sol.status,
        "flexibility_s": flex_s,
        "ours_s": median(ours),
        "ours_with_flexibility_s": median(total),
        "ours_build_s": sol.build_s,
        "ours_lp_s": sol.solve_s,
        "ours_cost": sol.cost,
        "ours_cost_evaluated_per_device": plan_cost(problem, sol.p_w),
        "max_energy_violation_wh": float(problem.flex.energy_violation(sol.p_w).max(initial=0.0)),
        "shortfall_w": float(np.nansum(sol.shortfall_w["capacity"])),
    }
    if baseline:
        times, costs = [], []
        for _ in range(max(1, repeats // 2)):
            t, c = cvxpy_baseline(problem)
            times.append(t)
            costs.append(c)
        out["cvxpy_s"] = median(times)
        out["cvxpy_cost"] = costs[0]
        out["ratio_cvxpy_over_ours"] = out["cvxpy_s"] / out["ours_s"]
        out["objective_gap"] = (sol.cost - costs[0]) / abs(costs[0]) if costs[0] else 0.0
    else:
        out["cvxpy_s"] = None
        out["cvxpy_note"] = "per-DER cvxpy horizon model not run at this size (--baseline-horizon-max)"
    return out


def run_reopt(n: int, lost: int, repeats: int) -> dict[str, Any]:
    problem, _ = build(n, 1)
    first = solve(problem)
    dispatched = np.flatnonzero(first.p_w[:, 0] - problem.flex.base[:, 0] > 1.0)
    rng = np.random.default_rng(1)
    gone = rng.choice(dispatched, size=min(lost, len(dispatched)), replace=False)
    times = []
    again = first
    for _ in range(repeats):
        t0 = time.perf_counter()
        updated = replace(problem, flex=hold(problem.flex, gone, problem.flex.base[gone], Binding.OFFLINE))
        feeders = np.unique(problem.feeder[gone])
        again = reoptimize(updated, first, feeders)
        times.append(time.perf_counter() - t0)
    return {
        "ders": n,
        "lost": len(gone),
        "feeders_resolved": len(np.unique(problem.feeder[gone])),
        "reoptimize_s": median(times),
        "shortfall_before_w": float(
            problem.targets[0].value_w[0]
            - (
                np.where(np.isin(np.arange(n), gone), problem.flex.base[:, 0], first.p_w[:, 0])
                - problem.flex.base[:, 0]
            ).sum()
        ),
        "shortfall_after_w": float(again.shortfall_w["capacity"][0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 DERs only, one repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument("--baseline-horizon-max", type=int, default=1_000)
    parser.add_argument("--horizon-max", type=int, default=10_000, help="largest fleet for the horizon")
    args = parser.parse_args()
    sizes = [1_000] if args.quick else args.sizes
    repeats = 1 if args.quick else args.repeats
    steps = 8 if args.quick else 96
    # HiGHS prints its banner on the C-level stdout: keep stdout for the JSON alone.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        result = run_all(args, sizes, repeats, steps)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    print(json.dumps(result, indent=2))


def run_all(args: argparse.Namespace, sizes: list[int], repeats: int, steps: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "dispatch",
        "machine": {"cpus": os.cpu_count(), "load_average_1m_at_start": os.getloadavg()[0]},
        "feeders": 100,
        "targets_s": {"single_100k": 0.1, "horizon_10k_96": 2.0, "reoptimize_200_lost": 1.0},
        "single_interval": [run_case(n, 1, repeats, True) for n in sizes],
        "horizon": [
            run_case(n, steps, max(1, repeats // 2), n <= args.baseline_horizon_max)
            for n in sizes
            if n <= args.horizon_max
        ],
        "reoptimize": [run_reopt(n, 200, repeats) for n in sizes],
    }
    result["machine"]["load_average_1m_at_end"] = os.getloadavg()[0]
    return result


if __name__ == "__main__":
    main()
