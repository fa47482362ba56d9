"""The orchestrator's rolling horizon consuming the load and PV forecasts.

Every 30 minutes of (manual) clock time the feeder's next-4-hour demand forecast — and, in
the second test, its PV forecast from the sites' metered history, netted off — is re-issued
from the newest metered interval and handed to ``derms.orchestration`` as the area import of
a peak-reduction objective; each plan must shave exactly the forecast excess over the
target at its first step.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from derms.core.clock import ManualClock
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.forecast.api import HORIZONS, forecast_feeder_load, forecast_pv_feeders
from derms.forecast.load import fit_load_model
from derms.forecast.pv import PvSites, pvwatts_ac
from derms.forecast.pv_history import forecast_pv_from_history
from derms.forecast.weather import TmyFileSource, pvlib_data_file
from derms.orchestration.engine import Orchestrator
from derms.orchestration.objectives import Areas
from derms.orchestration.synthetic import scenario

pytest.importorskip("pmdarima", reason="the 'backtest' extra (pmdarima) carries the real load series")
from derms.forecast.backtest import taylor_load

ISSUE = 6 * 7 * 48 + 30  # six weeks of history, then a Monday 15:00 BST


def test_rolling_horizon_plans_peak_reduction_from_each_new_forecast():
    times, y = taylor_load()
    feeder_w = y / y.mean() * 1.5e6  # the national shape on a 1.5 MW feeder
    model = fit_load_model(
        times[:ISSUE], feeder_w[:ISSUE], interval_s=1800, max_horizon=48, samples=3000, max_iter=40
    )
    sc = scenario(800, feeders=2, buses_per_feeder=4, steps=8, seed=5)
    start = datetime.fromisoformat(str(times[ISSUE])).replace(tzinfo=UTC)
    clock = ManualClock(start)
    orch = Orchestrator(sc.fleet, sc.prefs, Areas(("F0", "F1")), clock, grid=None, dt_s=1800.0, steps=8)
    first = forecast_feeder_load(model, times[:ISSUE], feeder_w[:ISSUE], HORIZONS["4 h"])
    target = float(first.forecast.p50[:, 0].max()) - 60e3
    orch.objectives.append(
        Objective(
            "peak-F0",
            ObjectiveKind.PEAK_REDUCTION,
            start,
            timedelta(hours=6),
            area=Area(AreaLevel.FEEDER, ("F0",)),
            target_w=target,
        )
    )
    f0 = sc.fleet.feeder == 0
    for k in range(3):  # three re-plans, 30 minutes apart
        now = ISSUE + k
        bundle = forecast_feeder_load(model, times[:now], feeder_w[:now], HORIZONS["4 h"])
        assert bundle.forecast.times[0] == times[now]  # the plan's first step is the next interval
        imports = bundle.forecast.p50[:, 0]
        orch.area_import_w = {"peak-F0": imports}
        outcome = orch.plan(trigger="forecast")
        shaved = (outcome.solution.p_w[f0] - outcome.problem.flex.base[f0]).sum(axis=0)
        need = np.maximum(imports - target, 0.0)
        assert shaved[0] == pytest.approx(need[0], abs=1.0)
        assert (shaved >= need - 1.0).all()
        clock.advance(1800)


def test_rolling_horizon_nets_pv_forecast_from_metered_history_without_weather():
    """No weather source: each re-plan forecasts the feeders' PV from the sites' own metered
    power (real irradiance — the Greensboro TMY3 through the PVWatts chain — 14 days up to
    the newest interval), subtracts its P50 from the load P50 and plans on that net import.
    The PV forecast moves between issues (the newest index weighs most), so the net import
    does too; every plan must keep the feeder under the target."""
    times, y = taylor_load()
    feeder_w = y / y.mean() * 1.5e6
    model = fit_load_model(
        times[:ISSUE], feeder_w[:ISSUE], interval_s=1800, max_horizon=48, samples=3000, max_iter=40
    )
    n = 60
    rng = np.random.default_rng(3)
    sites = PvSites(
        latitude=np.full(n, 36.1),
        longitude=np.full(n, -79.95),
        surface_tilt=rng.uniform(10.0, 35.0, n),
        surface_azimuth=rng.uniform(120.0, 240.0, n),
        pdc0_w=np.full(n, 5000.0),
        pac0_w=np.full(n, 4600.0),
        feeder=np.arange(n) % 2,
    )
    first = ISSUE - 14 * 48  # the metered PV history starts 14 days before the first issue
    start = datetime.fromisoformat(str(times[first])).replace(tzinfo=UTC)
    hourly = TmyFileSource(pvlib_data_file("723170TYA.CSV")).weather(start, start + timedelta(days=15))

    def held(a: np.ndarray) -> np.ndarray:  # hourly values over both half hours
        return np.repeat(a, 2)[:, None]

    pv_times = hourly.times[0] + np.arange(2 * len(hourly.times)) * np.timedelta64(1800, "s")
    assert pv_times[0] == times[first]
    pv_w = pvwatts_ac(sites, pv_times, held(hourly.ghi), held(hourly.temp_air), held(hourly.wind_speed), 1800)

    sc = scenario(800, feeders=2, buses_per_feeder=4, steps=8, seed=5)
    clock = ManualClock(datetime.fromisoformat(str(times[ISSUE])).replace(tzinfo=UTC))
    orch = Orchestrator(sc.fleet, sc.prefs, Areas(("F0", "F1")), clock, grid=None, dt_s=1800.0, steps=8)
    f0 = sc.fleet.feeder == 0
    target = None
    for k in range(3):  # three re-plans, 30 minutes apart
        now = ISSUE + k
        load = forecast_feeder_load(model, times[:now], feeder_w[:now], HORIZONS["4 h"]).forecast.p50[:, 0]
        hist = slice(k, now - first)  # 14 days ending at the newest metered interval
        per_site, per_feeder = forecast_pv_feeders(
            sites,
            None,
            n_feeders=2,
            history_times=pv_times[hist],
            history_w=pv_w[hist],
            horizon_s=HORIZONS["4 h"],
        )
        direct = forecast_pv_from_history(sites, pv_times[hist], pv_w[hist], 8)
        assert per_site.values == pytest.approx(direct.values, rel=1e-12)  # the fallback is this forecast
        assert per_feeder.times[0] == times[now]
        pv = per_feeder.p50[:, 0]
        assert (pv > 10e3).all()  # a July morning: tens of kW on the feeder at every step
        imports = load - pv
        if target is None:
            target = float(imports.max()) - 60e3
            orch.objectives.append(
                Objective(
                    "peak-F0",
                    ObjectiveKind.PEAK_REDUCTION,
                    clock.now(),
                    timedelta(hours=6),
                    area=Area(AreaLevel.FEEDER, ("F0",)),
                    target_w=target,
                )
            )
        orch.area_import_w = {"peak-F0": imports}
        outcome = orch.plan(trigger="forecast")
        shaved = (outcome.solution.p_w[f0] - outcome.problem.flex.base[f0]).sum(axis=0)
        need = np.maximum(imports - target, 0.0)
        assert (shaved >= need - 1.0).all()  # every step of every plan meets the target
        if k == 0:  # the first plan shaves exactly the excess (later ones may keep earlier commands)
            assert shaved[0] == pytest.approx(need[0], abs=1.0) and need[0] > 0.0
        clock.advance(1800)
