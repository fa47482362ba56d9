import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_headless_runs_and_rollups_are_consistent(tmp_path: Path) -> None:
    """`derms demo --headless` on the embedded default: 2,000 DERs on mv_oberrhein, real API;
    the demo operator's objective is planned and its commands acknowledged."""
    cmd = [
        sys.executable,
        "-m",
        "derms.cli.main",
        "demo",
        "--headless",
        "--duration",
        "6",
        "--objective-hour",
        "0",  # the operator's peak reduction at once, so plans and commands flow in a short run
        "--port",
        "0",
        "--database",
        str(tmp_path / "demo.sqlite"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{\n") :])
    assert summary["ders"] >= 2000 and len(summary["feeders"]) >= 2
    assert summary["telemetry_received"] >= summary["ders"]  # at least one full batch flowed
    assert summary["telemetry_written"] == summary["telemetry_received"]
    assert all(summary["checks"].values())
    assert summary["fleet"]["online"] + summary["fleet"]["offline"] == summary["ders"]
    orchestration = summary["orchestration"]
    assert orchestration["objective"]["kind"] == "peak_reduction"
    assert orchestration["plans"] >= 1
    assert orchestration["commands"]["acknowledged_ever"] > 0
    assert "command(s) acknowledged" in done.stderr
