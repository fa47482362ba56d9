"""The aggregated LP against the straightforward per-DER cvxpy model of the same problem
(``benchmarks/dispatch.py``), and deliverability of horizon plans device by device."""

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from derms.core.der import DerKind
from derms.orchestration.flexibility import flexibility
from derms.orchestration.greedy import merit_order
from derms.orchestration.inputs import FleetInput, Preferences, kind_code
from derms.orchestration.optimizer import solve
from derms.orchestration.problem import Problem, Target
from derms.orchestration.solution import plan_cost


def _benchmark() -> ModuleType:
    path = Path(__file__).parents[2] / "benchmarks" / "dispatch.py"
    spec = importlib.util.spec_from_file_location("dispatch_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _benchmark()


@pytest.fixture(scope="module")
def horizon() -> Problem:
    return bench.build(150, 24, feeders=5)[0]


def test_single_interval_equals_per_der_cvxpy() -> None:
    problem, _ = bench.build(600, 1, feeders=10)
    ours = solve(problem)
    assert ours.groups < problem.n / 2
    _, reference = bench.cvxpy_baseline(problem)
    assert ours.cost == pytest.approx(reference, rel=1e-7, abs=1e-7)
    assert plan_cost(problem, ours.p_w) == pytest.approx(ours.cost, rel=1e-6)


def test_horizon_exact_mode_is_the_per_der_model(horizon: Problem) -> None:
    exact = solve(horizon, aggregate="exact")
    _, reference = bench.cvxpy_baseline(horizon)
    assert exact.cost == pytest.approx(reference, rel=1e-6)


def test_horizon_plans_are_deliverable_device_by_device(horizon: Problem) -> None:
    f = horizon.flex
    for clusters in (1, 40):
        sol = solve(horizon, aggregate="shares", state_groups=clusters)
        assert sol.status == "optimal"
        assert np.all(sol.p_w >= f.p_lo - 1e-6) and np.all(sol.p_w <= f.p_hi + 1e-6)
        assert f.energy_violation(sol.p_w).max() < 1e-3
        # The LP's cost is what the devices cost.
        assert plan_cost(horizon, sol.p_w) == pytest.approx(sol.cost, rel=1e-6, abs=1e-6)


def test_fixed_shares_never_beat_the_per_der_optimum(horizon: Problem) -> None:
    # An inner approximation: its plans are feasible for the per-DER model, so cost at least as much.
    exact = solve(horizon, aggregate="exact").cost
    for clusters in (1, 40):
        assert solve(horizon, aggregate="shares", state_groups=clusters).cost >= exact - 1e-9


def test_greedy_fallback_plans_the_first_step_only(horizon: Problem) -> None:
    f = horizon.flex
    value = np.full(f.steps, 0.3 * f.up[:, 0].sum())
    problem = replace(horizon, targets=(Target("now", np.ones(f.n, bool), value),))
    sol = merit_order(problem)
    # The first step is dispatched within the (energy-folded) boxes; later steps stay at baseline.
    assert (sol.p_w[:, 0] - f.base[:, 0]).sum() == pytest.approx(value[0])
    assert np.all(sol.p_w[:, 1:] == f.base[:, 1:])
    assert f.energy_violation(sol.p_w).max() <= f.energy_violation(f.base).max() + 1e-9


def test_identical_devices_aggregate_exactly() -> None:
    # Equal shares are optimal for identical members (average any optimum over permutations),
    # so one group of 40 identical batteries reproduces the per-DER optimum.
    n, steps = 40, 24
    fleet = FleetInput.build(
        [f"b{i}" for i in range(n)],
        kind=kind_code(DerKind.HOME_BATTERY),
        feeder=0,
        bus=0,
        soc=0.5,
        w_max=5000.0,
        w_max_consume=5000.0,
        wh_max=13500.0,
        eta_charge=0.95,
        eta_discharge=0.95,
    )
    prefs = Preferences.build(n, steps, cost_up=0.05, cost_down=0.02, soc_min=0.1)
    f = flexibility(fleet, prefs, steps=steps)
    value = np.where(np.arange(steps) == 18, 150e3, np.nan)
    problem = Problem.of(
        fleet,
        prefs,
        f,
        targets=(Target("peak", np.ones(n, bool), value),),
        prices=0.1 + 0.1 * np.sin(np.arange(steps) / steps * 2 * np.pi),
    )
    shares = solve(problem, aggregate="shares")
    exact = solve(problem, aggregate="exact")
    assert shares.groups == 1 and exact.groups == n
    assert shares.cost == pytest.approx(exact.cost, rel=1e-7)


def _one_battery(steps: int, soc: float, **prefs: Any) -> tuple[FleetInput, Preferences]:
    fleet = FleetInput.build(
        ["b"],
        kind=kind_code(DerKind.HOME_BATTERY),
        feeder=0,
        bus=0,
        soc=soc,
        w_max=5000.0,
        w_max_consume=5000.0,
        wh_max=10_000.0,
    )
    return fleet, Preferences.build(1, steps, **prefs)


def test_a_shortfall_falls_on_the_later_interval() -> None:
    # Energy for one interval at the rating, a target at the rating in two: the plan meets the
    # nearer one (about to be dispatched) and leaves the later one short.
    fleet, prefs = _one_battery(2, soc=0.125)
    f = flexibility(fleet, prefs, steps=2)
    problem = Problem.of(
        fleet,
        prefs,
        f,
        targets=(Target("t", np.ones(1, bool), np.full(2, 5000.0)),),
    )
    sol = solve(problem)
    assert sol.shortfall_w["t"] == pytest.approx([0.0, 5000.0], abs=1e-6)
    assert plan_cost(problem, sol.p_w) == pytest.approx(sol.cost, rel=1e-9)


def test_contract_limits_may_differ_per_step() -> None:
    fleet, prefs = _one_battery(3, soc=0.5, contract_down_w=np.array([[0.0, 1000.0, np.inf]]))
    f = flexibility(fleet, prefs, steps=3)
    assert f.p_lo[0] == pytest.approx([0.0, -1000.0, -5000.0])
    with pytest.raises(ValueError, match="contract_up_w must have shape"):
        Preferences.build(1, 3, contract_up_w=np.zeros((1, 2)))
