"""Forecasting speed and accuracy.

Times a day-ahead forecast for 10,000 sites — PV (PVWatts chain with P10/P50/P90, 15-minute
intervals, 20 weather cells), PV from the sites' own power history (14 days of
15-minute history, no weather forecast) and load (the global gradient-boosted quantile model, 30-minute
intervals) — and, as the baseline measured in the same run, pvlib's per-site ``ModelChain``
on a sample of sites, extrapolated to the same count. Then runs the backtest accuracy table
(MAE, nMAE, pinball loss against persistence and seasonal naive on real data).
Prints one JSON object; timings are medians over ``--repeats`` rounds.

    python benchmarks/forecast.py            # 10,000 sites, 3 repeats, full backtest
    python benchmarks/forecast.py --quick    # 1,000 sites, 1 repeat, quick backtest
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pvlib

from derms.forecast.backtest import run_backtest, taylor_load
from derms.forecast.load import fit_load_model, forecast_load
from derms.forecast.pv import PvSites, forecast_pv
from derms.forecast.pv_history import clear_sky_power, forecast_pv_from_history
from derms.forecast.weather import TmyFileSource, WeatherFrame, pvlib_data_file

DAY = (datetime(2026, 6, 21, tzinfo=UTC), datetime(2026, 6, 22, tzinfo=UTC))


def quarter_hourly(w: WeatherFrame) -> WeatherFrame:
    """Hourly TMY values held over each hour's four quarter-hours."""
    rep = {
        k: np.repeat(getattr(w, k), 4) for k in ("ghi", "dni", "dhi", "temp_air", "wind_speed", "cloud_cover")
    }
    times = w.times[0] + np.arange(len(w.times) * 4) * np.timedelta64(900, "s")
    return WeatherFrame(times=times, interval_s=900, latitude=w.latitude, longitude=w.longitude, **rep)


def random_sites(n: int, rng: np.random.Generator) -> PvSites:
    return PvSites(
        latitude=rng.uniform(35.5, 36.7, n),
        longitude=rng.uniform(-80.5, -79.4, n),
        surface_tilt=rng.uniform(10, 35, n),
        surface_azimuth=rng.uniform(120, 240, n),
        pdc0_w=rng.uniform(3000, 12000, n),
        pac0_w=rng.uniform(2800, 11000, n),
        feeder=rng.integers(0, 50, n),
        weather_index=rng.integers(0, 20, n),
    )


def timed(fn, repeats: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def modelchain_per_site(sites: PvSites, w: WeatherFrame, sample: int) -> float:
    """Seconds per site for pvlib's ModelChain (PVWatts) on hourly weather, over ``sample`` sites."""
    idx = pd.DatetimeIndex(w.times).tz_localize("UTC")
    frame = pd.DataFrame(
        {k: getattr(w, k) for k in ("ghi", "dni", "dhi", "temp_air", "wind_speed")}, index=idx
    )
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    t0 = time.perf_counter()
    for i in range(sample):
        system = pvlib.pvsystem.PVSystem(
            surface_tilt=sites.surface_tilt[i],
            surface_azimuth=sites.surface_azimuth[i],
            module_parameters={"pdc0": sites.pdc0_w[i], "gamma_pdc": -0.004},
            inverter_parameters={"pdc0": sites.pac0_w[i] / 0.96},
            temperature_model_parameters=params,
        )
        location = pvlib.location.Location(sites.latitude[i], sites.longitude[i])
        mc = pvlib.modelchain.ModelChain(system, location, aoi_model="no_loss", spectral_model="no_loss")
        mc.run_model(frame)
    return (time.perf_counter() - t0) / sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sites", type=int)
    parser.add_argument("--repeats", type=int)
    args = parser.parse_args()
    n = args.sites or (1000 if args.quick else 10_000)
    repeats = args.repeats or (1 if args.quick else 3)
    rng = np.random.default_rng(0)

    hourly = TmyFileSource(pvlib_data_file("723170TYA.CSV")).weather(*DAY)
    weather = [quarter_hourly(hourly)] * 20
    sites = random_sites(n, rng)
    forecast_pv(random_sites(1, rng), weather)  # warm the cached calibration
    pv_s, pv = timed(lambda: forecast_pv(sites, weather), repeats)
    per_site = modelchain_per_site(sites, hourly, sample=5 if args.quick else 20)
    past = np.datetime64("2026-06-07T00:00:00") + np.arange(14 * 96) * np.timedelta64(900, "s")
    metered = clear_sky_power(sites, past, 900) * rng.uniform(0.3, 1.0, (len(past), 1))  # cloudy days
    hist_s, _ = timed(lambda: forecast_pv_from_history(sites, past, metered, 96), repeats)

    times, y = taylor_load()
    fit_t0 = time.perf_counter()
    model = fit_load_model(
        times[:3000],
        y[:3000],
        interval_s=1800,
        max_horizon=48,
        timezone="Europe/London",
        samples=4000 if args.quick else 12_000,
        max_iter=60 if args.quick else 120,
    )
    fit_s = time.perf_counter() - fit_t0
    history = y[3000 - 8 * 48 : 3000, None] * rng.uniform(2e-6, 2e-5, n)[None, :]  # 8 days, site-sized
    load_s, load = timed(lambda: forecast_load(model, times[3000 - 8 * 48 : 3000], history, 48), repeats)

    bt_t0 = time.perf_counter()
    rows = run_backtest(quick=args.quick)
    result = {
        "benchmark": "forecast",
        "quick": args.quick,
        "sites": n,
        "repeats": repeats,
        "pv_day_ahead": {
            "intervals": len(weather[0].times),
            "quantiles": list(pv.quantiles),
            "seconds": pv_s,
            "sites_per_second": n / pv_s,
            "baseline_pvlib_modelchain_seconds_extrapolated": per_site * n,
            "speedup_vs_modelchain": per_site * n / pv_s,
        },
        "pv_day_ahead_from_history": {
            "history_intervals": len(past),
            "intervals": 96,
            "seconds": hist_s,
            "sites_per_second": n / hist_s,
        },
        "load_day_ahead": {
            "intervals": load.values.shape[1],
            "quantiles": list(load.quantiles),
            "seconds": load_s,
            "sites_per_second": n / load_s,
            "model_fit_seconds": fit_s,
        },
        "backtest_seconds": time.perf_counter() - bt_t0,
        "backtest": [asdict(r) for r in rows],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
