"""State clusters of fixed-share horizon groups (:func:`derms.orchestration.aggregate.cluster_states`)."""

from __future__ import annotations

import numpy as np
import pytest

from derms.core.der import DerKind
from derms.orchestration.aggregate import (
    baseline_energy,
    cluster_states,
    factorize,
    share_keys,
    state_features,
)
from derms.orchestration.flexibility import flexibility
from derms.orchestration.inputs import FleetInput, Preferences, kind_code
from derms.orchestration.optimizer import solve
from derms.orchestration.problem import Problem, Target
from derms.orchestration.solution import plan_cost


def _batteries(soc: np.ndarray, steps: int = 24) -> Problem:
    n = len(soc)
    fleet = FleetInput.build(
        [f"b{i}" for i in range(n)],
        kind=kind_code(DerKind.HOME_BATTERY),
        feeder=0,
        bus=0,
        soc=soc,
        w_max=5000.0,
        w_max_consume=5000.0,
        wh_max=13500.0,
        eta_charge=0.95,
        eta_discharge=0.95,
    )
    prefs = Preferences.build(n, steps, cost_up=0.05, cost_down=0.02, soc_min=0.1)
    f = flexibility(fleet, prefs, steps=steps)
    value = np.where(np.arange(steps) == 18, 0.5 * 5000.0 * n, np.nan)
    k = np.arange(steps)
    return Problem.of(
        fleet,
        prefs,
        f,
        targets=(Target("evening", np.ones(n, bool), value),),
        prices=0.12 + 0.08 * np.sin((k - 10) / steps * 2 * np.pi),
    )


def test_two_populations_become_two_clusters_and_alike_devices_one() -> None:
    soc = np.r_[np.full(30, 0.2), np.full(30, 0.85)]
    problem = _batteries(soc)
    cell, _ = factorize(*share_keys(problem, np.zeros(problem.n, np.int64), 50)[:1])
    label = cluster_states(cell, state_features(problem, baseline_energy(problem)), 50)
    # Each population is alike (no spread): one label each, and the two differ.
    assert len(np.unique(label[:30])) == 1 and len(np.unique(label[30:])) == 1
    assert label[0] != label[-1]
    # A cell without spread gets no budget at all.
    same = _batteries(np.full(20, 0.5))
    keys = share_keys(same, np.zeros(same.n, np.int64), 50)
    assert len(np.unique(factorize(*keys)[0])) == 1


def test_clusters_are_reproducible_and_bounded_by_the_budget() -> None:
    rng = np.random.default_rng(3)
    problem = _batteries(rng.uniform(0.15, 0.95, 400))
    keys_a = share_keys(problem, np.zeros(problem.n, np.int64), 12)
    keys_b = share_keys(problem, np.zeros(problem.n, np.int64), 12)
    assert np.array_equal(keys_a[-1], keys_b[-1])
    assert 2 <= len(np.unique(keys_a[-1])) <= 12


def test_more_clusters_bring_the_plan_towards_the_per_der_optimum() -> None:
    rng = np.random.default_rng(4)
    problem = _batteries(rng.uniform(0.15, 0.95, 120))
    exact = solve(problem, aggregate="exact").cost
    one = solve(problem, aggregate="shares", state_groups=1)
    many = solve(problem, aggregate="shares", state_groups=30)
    assert many.groups > one.groups
    assert exact - 1e-9 <= many.cost < one.cost
    # Still an inner approximation: the devices can follow it and it costs what the LP says.
    assert problem.flex.energy_violation(many.p_w).max() < 1e-3
    assert plan_cost(problem, many.p_w) == pytest.approx(many.cost, rel=1e-6, abs=1e-6)
