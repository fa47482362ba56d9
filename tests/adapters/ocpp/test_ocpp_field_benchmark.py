"""``benchmarks/field.py --quick`` runs and prints the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_field_benchmark_quick() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "field.py"), "--quick"],
        capture_output=True, text=True, timeout=240, check=True, cwd=ROOT,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["ocpp"]["chargers_connected"] == 50
    assert report["ocpp"]["acknowledged"] == 50 and report["ocpp"]["failed"] == 0
    assert report["ocpp"]["profiles_per_s_median"] > 0
    assert report["sunspec"]["discovered"] == 10
    assert report["sunspec"]["devices_polled_per_s_median"] > 0
