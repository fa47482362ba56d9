from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "grid.py"


def test_grid_benchmark_quick_prints_json() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, check=True, timeout=600
    )
    result = json.loads(out.stdout)
    assert result["quick"] is True
    snap = result["snapshot"]["mv_oberrhein"]
    assert snap["pgm_s"] > 0 and snap["ratio_pandapower_over_pgm"] > 0
    ts = result["timeseries_year"]
    assert ts["steps"] == 192 and ts["converged_fraction"] == 1.0 and ts["feeder_buses"] >= 100
    hc = result["hosting_capacity"]
    assert hc["buses"] >= 100 and hc["per_time_point_s"] > 0 and hc["series_steps"] == 96
    doe = result["doe_day"]
    assert doe["intervals"] == 96 and doe["sites"] > 500 and doe["verified_fraction"] == 1.0
