"""The dispatch benchmark runs in --quick mode and prints the promised JSON."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_dispatch_benchmark_quick() -> None:
    script = Path(__file__).parents[2] / "benchmarks" / "dispatch.py"
    out = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=600, check=True
    )
    data = json.loads(out.stdout)
    single = data["single_interval"][0]
    assert single["ders"] == 1000 and single["status"] == "optimal"
    assert single["ours_s"] > 0 and single["cvxpy_s"] > 0
    assert single["ratio_cvxpy_over_ours"] == pytest.approx(single["cvxpy_s"] / single["ours_s"])
    # Exact aggregation: the same optimum as the per-DER model.
    assert abs(single["objective_gap"]) < 1e-6
    horizon = data["horizon"][0]
    assert horizon["status"] == "optimal" and "objective_gap" in horizon
    reopt = data["reoptimize"][0]
    assert reopt["lost"] == 200 and reopt["shortfall_after_w"] < 1.0 < reopt["shortfall_before_w"]
