"""benchmarks/forecast.py --quick runs and prints the documented JSON."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pmdarima", reason="the backtest needs the 'backtest' extra")

ROOT = Path(__file__).resolve().parents[2]


def test_forecast_benchmark_quick_prints_json_with_accuracy_table():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "forecast.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(out.stdout)
    assert result["sites"] == 1000 and result["pv_day_ahead"]["intervals"] == 96
    assert result["pv_day_ahead"]["seconds"] > 0 and result["load_day_ahead"]["intervals"] == 48
    assert result["pv_day_ahead"]["speedup_vs_modelchain"] > 1
    assert result["pv_day_ahead_from_history"]["seconds"] > 0
    ours = [r for r in result["backtest"] if r["beats_persistence"] is not None]
    assert {r["series"] for r in ours} == {"load GB 2000", "PV Greensboro TMY3"}
    # on real demand the gradient-boosted model beats persistence at every horizon
    assert all(r["beats_persistence"] for r in ours if r["series"] == "load GB 2000")
