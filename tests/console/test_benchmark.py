"""The console benchmark runs in quick mode and prints its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_console_benchmark_quick() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "console.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=540,
        check=True,
        cwd=ROOT,
    ).stdout
    result = json.loads(out[out.index("\n{") + 1 :] if not out.startswith("{") else out)
    assert result["benchmark"] == "console_drop_to_drill_view"
    assert result["ders"] == 2000 and result["dropped"] == 200
    assert len(result["latency_s"]) == 1 and result["latency_s"][0] > 0
    assert set(result["feeders_named"]) <= {"F0", "F1", "F2", "F3"} and result["feeders_named"]
