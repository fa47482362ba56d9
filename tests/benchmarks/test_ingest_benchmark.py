import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ingest_benchmark_quick_prints_json() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--quick"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    result = json.loads(out[out.index("{\n") :])
    sqlite = next(r for r in result["ingest"] if r["database"] == "sqlite")
    assert sqlite["samples_per_s_median"] > 0 and sqlite["speedup_vs_baseline"] > 0
    assert result["rollup"]["ders"] == 10_000 and result["rollup"]["latency_ms_median"] > 0
