"""The benchmark runs end to end with ``--quick`` and prints its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_ieee2030_5_benchmark_quick_prints_json() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ieee2030_5.py"), "--quick"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    result = json.loads(out[out.index("{") :])
    for scenario in ("get_dercontrol_list", "post_mirror_meter_reading"):
        assert result[scenario]["requests_per_s"] > 0
        assert result[scenario]["p99_ms"] >= result[scenario]["p50_ms"] > 0
        assert result[scenario]["ratio_to_baseline"] > 0
    assert result["registered_end_devices"] >= 1000
