"""Grid engine benchmarks: power flow, time series, hosting capacity, operating envelopes.

All on networks shipped with pandapower.  Profiles are synthetic and deterministic (a daily
and seasonal load shape, a clear-sky-like PV shape): the timings do not depend on their detail.

* ``snapshot``: one AC power flow per network, power-grid-model vs pandapower (baseline, the
  ratio is pandapower / power-grid-model), medians over repeats;
* ``timeseries_year``: a year at 15 min (35,040 steps) on mv_oberrhein (177 MV buses); the
  pandapower baseline is measured on a few hundred steps and scaled to the year;
* ``hosting_capacity``: nodal generation hosting capacity at every MV bus of mv_oberrhein for
  one time point (target at most 0.1 s; wall and CPU medians with the load average, since the
  wall time on a shared machine depends on it) and for the year (operating points binned to
  0.05, each distinct bin solved exactly; ``year_unbinned_extrapolated_s`` is the per-point
  time times 35,040, not measured);
* ``doe_day``: envelopes for every site of mv_oberrhein's larger substation (the sites of
  2,000 spread DERs) for the 96 intervals of a day, each verified by AC power flow.

``--quick`` runs fewer repeats, two networks, a two-day "year" and a one-day hosting-capacity
series binned to 0.25; the JSON has the same keys.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from derms.grid.envelopes import operating_envelopes
from derms.grid.hosting import hosting_capacity, hosting_capacity_series
from derms.grid.limits import Limits
from derms.grid.mapping import spread_ders
from derms.grid.network import load_network
from derms.grid.powerflow import PgmEngine, run_pandapower

STEPS_PER_YEAR = 365 * 96
HC_TARGET_S = 0.1


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time [s] over ``repeats`` calls, and the last result."""
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def profiles(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Load scaling (0.3-1.0) and PV scaling (0-1) per 15-minute step."""
    t = np.arange(steps) / 96.0
    day = t % 1.0
    season = np.cos(2 * np.pi * t / 365.0)
    load = 0.55 + 0.2 * season + 0.2 * np.sin(2 * np.pi * (day - 0.3)) ** 2
    pv = np.clip(np.sin(np.pi * (day - 0.25) / 0.5), 0, None) * (day > 0.25) * (day < 0.75)
    return np.clip(load, 0.3, 1.0), pv * (0.8 - 0.2 * season)


def bench_snapshot(repeats: int, names: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name in names:
        m = load_network(name, sgen_scaling=1.0)
        eng = PgmEngine(m)
        eng.run()
        run_pandapower(m)
        t_pgm, _ = timed(eng.run, repeats)
        t_pp, _ = timed(lambda m=m: run_pandapower(m), max(3, repeats // 5))
        out[name] = {
            "buses": len(m.bus_ids),
            "feeders": len(m.feeders),
            "pgm_s": t_pgm,
            "pandapower_s": t_pp,
            "ratio_pandapower_over_pgm": t_pp / t_pgm,
        }
    return out


def bench_timeseries(steps: int, baseline_steps: int) -> dict[str, Any]:
    m = load_network("mv_oberrhein", sgen_scaling=1.0)
    eng = PgmEngine(m)
    load, pv = profiles(steps)
    t_pgm, res = timed(lambda: eng.run_batch(load_scale=load, sgen_scale=pv), 1)
    t0 = time.perf_counter()
    for k in range(baseline_steps):
        run_pandapower(m, load_scale=load[k], sgen_scale=pv[k])
    t_pp = (time.perf_counter() - t0) / baseline_steps * steps
    return {
        "network": "mv_oberrhein",
        "feeder_buses": int((m.buses["feeder_index"] >= 0).sum()),
        "steps": steps,
        "pgm_s": t_pgm,
        "pandapower_estimated_s": t_pp,
        "pandapower_measured_steps": baseline_steps,
        "ratio_pandapower_over_pgm": t_pp / t_pgm,
        "converged_fraction": float(res.converged.mean()),
        "max_vm_pu": float(np.nanmax(res.vm_pu)),
    }


def bench_hosting(steps: int, repeats: int, resolution: float) -> dict[str, Any]:
    m = load_network("mv_oberrhein")
    eng = PgmEngine(m)
    limits = Limits.ansi("A")
    hosting_capacity(eng, limits)
    walls, cpus = [], []
    hc = np.zeros((1, 0))
    load_before = os.getloadavg()[0]
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        hc = hosting_capacity(eng, limits)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    t_point = statistics.median(walls)
    load, pv = profiles(steps)
    m_pv = load_network("mv_oberrhein", sgen_scaling=1.0)
    eng_pv = PgmEngine(m_pv)
    bins = len(np.unique(np.stack([np.floor(load / resolution), np.ceil(pv / resolution)]), axis=1).T)
    t_year, hcy = timed(
        lambda: hosting_capacity_series(eng_pv, limits, load, sgen_scale=pv, resolution=resolution), 1
    )
    return {
        "network": "mv_oberrhein",
        "buses": int(hc.shape[1]),
        "step_w": 100e3,
        "per_time_point_s": t_point,
        "per_time_point_cpu_s": statistics.median(cpus),
        "per_time_point_min_s": min(walls),
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "target_per_time_point_s": HC_TARGET_S,
        "meets_target": t_point <= HC_TARGET_S,
        "median_hc_mw": float(np.median(hc) / 1e6),
        "series_steps": steps,
        "series_resolution": resolution,
        "series_distinct_operating_points": bins,
        "series_s": t_year,
        "series_min_hc_mw": float(hcy.min() / 1e6),
        "year_unbinned_extrapolated_s": t_point * STEPS_PER_YEAR,
    }


def bench_doe(repeats: int) -> dict[str, Any]:
    m = load_network("mv_oberrhein")
    eng = PgmEngine(m)
    der_bus = spread_ders(m, 2000, seed=0)
    substation = m.buses.loc[m.buses["feeder_index"] >= 0, "substation_id"].value_counts().idxmax()
    on_sub = der_bus[m.buses.loc[der_bus, "substation_id"].to_numpy() == substation]
    sites = pd.DataFrame(
        {"bus": on_sub, "export_capacity_w": 10e3, "import_capacity_w": 15e3},
        index=[f"site-{i}" for i in range(len(on_sub))],
    )
    starts = pd.date_range("2026-07-01", periods=96, freq="15min", tz="UTC")
    load, _ = profiles(96)
    t, doe = timed(
        lambda: operating_envelopes(
            eng, Limits.ansi("A"), sites, starts, timedelta(minutes=15), load_scale=load
        ),
        repeats,
    )
    return {
        "network": "mv_oberrhein",
        "substation": substation,
        "sites": len(sites),
        "intervals": 96,
        "s": t,
        "verified_fraction": float(doe["verified"].mean()),
        "median_export_kw": float(doe["export_w"].median() / 1e3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, networks and a two-day 'year'")
    args = parser.parse_args()
    q = args.quick
    # power-grid-model-io logs conversion notes to stdout; keep stdout for the JSON alone
    with contextlib.redirect_stdout(sys.stderr):
        result = run(q)
    print(json.dumps(result, indent=2))


def run(q: bool) -> dict[str, Any]:
    steps = 2 * 96 if q else STEPS_PER_YEAR
    networks = (
        ("mv_oberrhein", "cigre_lv") if q else ("mv_oberrhein", "cigre_mv", "cigre_lv", "kerber_dorfnetz")
    )
    return {
        "benchmark": "grid",
        "quick": q,
        "snapshot": bench_snapshot(3 if q else 15, networks),
        "timeseries_year": bench_timeseries(steps, 5 if q else 200),
        "hosting_capacity": bench_hosting(96 if q else steps, 1 if q else 5, 0.25 if q else 0.05),
        "doe_day": bench_doe(1 if q else 3),
    }


if __name__ == "__main__":
    main()
