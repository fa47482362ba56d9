"""The horizon LP's starting basis (energy states basic) reaches HiGHS's own optimum of the
same LP with fewer dual simplex iterations."""

import importlib.util
import sys
from pathlib import Path

import highspy
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
