"""The horizon LP's starting basis (energy states basic) reaches HiGHS's own optimum of the
same LP with fewer dual simplex iterations."""

import importlib.util
import sys
from pathlib import Path

import highspy
import numpy as np
import pytest

from derms.orchestration import optimizer
from derms.orchestration.optimizer import solve


def _build():
    path = Path(__file__).parents[2] / "benchmarks" / "dispatch.py"
    spec = importlib.util.spec_from_file_location("dispatch_benchmark_basis", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.build


def test_state_basis_reaches_the_slack_basis_optimum() -> None:
    problem = _build()(200, 24, feeders=5)[0]
    sol = solve(problem, aggregate="shares")
    used = optimizer._highs()  # the instance that just solved, with the model still loaded
    ours = used.getInfo().simplex_iteration_count
    cold = highspy.Highs()
    cold.setOptionValue("output_flag", False)
    cold.setOptionValue("threads", 1)
    cold.setOptionValue("presolve", "off")
    cold.passModel(used.getLp())
    cold.run()
    assert cold.getModelStatus() == highspy.HighsModelStatus.kOptimal
    assert sol.cost == pytest.approx(cold.getInfo().objective_function_value, rel=1e-9, abs=1e-9)
    assert ours < cold.getInfo().simplex_iteration_count


def test_block_order_returns_primal_and_duals_in_builder_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """HiGHS gets the horizon LP group by group; the solution and the row duals come back in the
    builder's order: with the builder's own matrix and costs they satisfy the LP's optimality
    conditions (reduced cost ``c - A^T y`` >= 0 at a lower bound, <= 0 at an upper bound, 0 between)."""
    captured = {}
    solve_highs = optimizer._solve_highs

    def spy(b, a, solver, time_limit):
        out = solve_highs(b, a, solver, time_limit)
        captured.update(b=b, a=a, out=out)
        return out

    monkeypatch.setattr(optimizer, "_solve_highs", spy)
    problem = _build()(200, 24, feeders=5)[0]
    sol = solve(problem, aggregate="shares")
    b, a, (status, x, y, obj) = captured["b"], captured["a"], captured["out"]
    assert status == "Optimal" and sol.cost == obj
    cols, rows = b.order()
    assert sorted(cols) == list(range(b.n_col)) and sorted(rows) == list(range(b.n_row))
    cost, lower, upper = (np.concatenate(v) for v in (b.cost, b.lower, b.upper))
    assert cost @ x == pytest.approx(obj, rel=1e-9)
    activity = a @ x
    row_lo, row_hi = np.concatenate(b.row_lo), np.concatenate(b.row_hi)
    assert np.all(activity >= row_lo - 1e-6) and np.all(activity <= row_hi + 1e-6)
    d = cost - a.T @ y
    scale = np.abs(cost).max()
    free = (lower != upper) & (x > lower + 1e-7) & (x < upper - 1e-7)
    assert np.abs(d[free]).max() <= 1e-7 * scale
    assert d[(x <= lower + 1e-7) & (lower != upper)].min() >= -1e-7 * scale
    assert d[(x >= upper - 1e-7) & (lower != upper)].max() <= 1e-7 * scale
    assert np.abs(y).max() > 0  # the capacity rows price the plan
