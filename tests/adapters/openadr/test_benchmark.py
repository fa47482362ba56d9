"""benchmarks/openadr.py --quick runs and prints the documented JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_benchmark_quick_prints_json():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/openadr.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
        cwd=ROOT,
    )
    data = json.loads(out.stdout)
    assert data["benchmark"] == "openadr20b_event_to_ack"
    for row in data["results"]:
        assert row["vens"] > 0
        for transport in ("http", "wire"):
            r = row[transport]
            assert 0 < r["median_ack_s"] <= r["p95_ack_s"] <= r["all_acked_s"]
        assert row["ratio_http_to_wire_all_acked"] > 0
        assert row["wire"]["acked_fraction"] == 1.0
