"""The simulator benchmark runs in its quick mode and prints the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sim_benchmark_quick_prints_json() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sim.py"), "--quick"],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    ).stdout
    result = json.loads(out)
    assert result["benchmark"] == "sim" and result["quick"] is True
    assert result["baseline"]["ders"] == 1_000
    (fleet,) = result["fleets"]
    assert fleet["ders"] == 2_000
    assert fleet["step_5s_ms_median"] > 0 and fleet["columns_ms_median"] > 0
    assert fleet["per_der_vs_1000"] > 0
