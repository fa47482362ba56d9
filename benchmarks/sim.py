"""Fleet simulator step time for 10,000 and 100,000 DERs.

Prints one JSON object with, per fleet size: fleet generation and construction time, the
median time of one ``step`` of 5 s and of 60 s (one physics sub-step each) at local noon,
the columnar telemetry read (``columns``) and the object read (``samples``), and, as the
baseline measured in the same run, the same 5 s step of a fleet of 1,000 so that
``per_der_vs_1000`` shows how the cost per device scales. The target is a 10,000-DER step
well under 50 ms.

Medians over repeats; the machine is small and shared, so read medians, not single runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

from derms.sim.fleet import FleetSimulator, generate_fleet
from derms.sim.weather import default_weather

NOON = datetime(2026, 7, 15, 17, 0, tzinfo=UTC)
TARGET_10K_MS = 50.0


def _timed(fn, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def measure(n: int, repeats: int) -> dict[str, float | int]:
    buses = [str(b) for b in range(180)]
    t0 = time.perf_counter()
    ders, sites, _ = generate_fleet(n, buses, seed=1, tenant_ids=["utility"], feeder_ids=["f"] * len(buses))
    generate_ms = (time.perf_counter() - t0) * 1000.0
    t0 = time.perf_counter()
    fleet = FleetSimulator(ders, sites, start=NOON, seed=1)
    build_ms = (time.perf_counter() - t0) * 1000.0
    fleet.step(NOON + timedelta(seconds=5))

    def step(seconds: float):  # type: ignore[no-untyped-def]
        return lambda: fleet.step(fleet.now + timedelta(seconds=seconds))

    step5 = _timed(step(5.0), repeats)
    step60 = _timed(step(60.0), repeats)
    columns = _timed(fleet.columns, repeats)
    samples = _timed(fleet.samples, max(3, repeats // 10))
    return {
        "ders": n,
        "generate_ms": round(generate_ms, 1),
        "build_ms": round(build_ms, 1),
        "step_5s_ms_median": round(statistics.median(step5), 3),
        "step_60s_ms_median": round(statistics.median(step60), 3),
        "columns_ms_median": round(statistics.median(columns), 3),
        "samples_ms_median": round(statistics.median(samples), 3),
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small fleets and few repeats (for the test suite)"
    )
    args = parser.parse_args()
    sizes, repeats = ((2_000,), 5) if args.quick else ((10_000, 100_000), 50)
    default_weather().dc_per_w(NOON.timestamp())  # build the year's PV table outside the timings
    baseline = measure(1_000, repeats)
    results = []
    for n in sizes:
        row = measure(n, repeats)
        per_der = row["step_5s_ms_median"] / n
        row["per_der_vs_1000"] = round(per_der / (baseline["step_5s_ms_median"] / 1_000), 3)
        results.append(row)
    ten_k = next((r for r in results if r["ders"] == 10_000), None)
    print(
        json.dumps(
            {
                "benchmark": "sim",
                "quick": args.quick,
                "baseline": baseline,
                "fleets": results,
                "target_10k_step_ms": TARGET_10K_MS,
                "meets_target": None if ten_k is None else ten_k["step_5s_ms_median"] < TARGET_10K_MS,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
