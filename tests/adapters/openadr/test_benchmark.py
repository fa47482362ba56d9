"""benchmarks/openadr.py --quick runs and prints the documented JSON, polling and push."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("mode", ["poll", "push"])
def test_benchmark_quick_prints_json(mode):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/openadr.py"),
            "--quick",
            *(["--push"] if mode == "push" else []),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
        cwd=ROOT,
    )
    data = json.loads(out.stdout)
    assert data["benchmark"] == "openadr20b_event_to_ack"
    (row,) = data["results"]
    assert row["mode"] == mode and row["vens"] == 50 and row["acked_fraction"] == 1.0
    assert 0 < row["median_ack_s"] <= row["p95_ack_s"] <= row["max_ack_s"]
    assert row["vtn_cpu_us_per_request"] > 0 and len(row["loadavg_1_5_15"]) == 3
    if mode == "poll":
        assert row["poll_s"] == 1.0 and row["achieved_poll_rate_per_s"] > 0
