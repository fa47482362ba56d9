"""The rolling-horizon API: quantile arrays for the next horizon with naive references."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from derms.forecast.api import HORIZONS, forecast_feeder_load, forecast_pv_feeders, naive_references
from derms.forecast.load import fit_load_model
from derms.forecast.nws import NwsGridpointForecast
from derms.forecast.pv import PvSites, forecast_pv, pvwatts_ac
from derms.forecast.pv_history import forecast_pv_from_history
from derms.forecast.weather import TmyFileSource, pvlib_data_file

pytest.importorskip("pmdarima", reason="the 'backtest' extra (pmdarima) carries the real load series")
from derms.forecast.backtest import taylor_load


def test_naive_references_by_hand():
    times = np.arange(
        np.datetime64("2026-01-01T00:00"), np.datetime64("2026-01-04T00:00"), np.timedelta64(6, "h")
    )
    y = np.tile([1.0, 2.0, 3.0, 4.0], 3)[:, None]  # a perfectly daily series (4 steps per day)
    pers, seas = naive_references(times, y, 2, 6 * 3600, (0.1, 0.5, 0.9), "demand")
    assert seas.values[:, :, 0] == pytest.approx(np.array([[1.0, 2.0]] * 3))  # no seasonal error
    assert pers.p50[0, 0] == pytest.approx(4.0 + np.median([1, 1, 1, -3, 1, 1, 1, -3, 1, 1, 1]))
    assert str(pers.times[0]) == "2026-01-04T00:00:00"


def test_feeder_load_bundle_for_two_feeders_at_standard_horizons():
    times, y = taylor_load()
    hist = np.column_stack([y[:3000], 0.2 * y[:3000]])  # two feeders of different size
    model = fit_load_model(times[:3000], hist, interval_s=1800, max_horizon=48, samples=2000, max_iter=30)
    bundle = forecast_feeder_load(model, times[:3000], hist, HORIZONS["4 h"])
    assert bundle.forecast.values.shape == bundle.persistence.values.shape == (3, 8, 2)
    ratio = bundle.forecast.p50[:, 1] / bundle.forecast.p50[:, 0]
    assert ratio == pytest.approx(np.full(8, 0.2), rel=1e-6)  # scale-free global model
    with pytest.raises(ValueError, match="multiple"):
        forecast_feeder_load(model, times[:3000], hist, HORIZONS["15 min"])  # 30-min data


def test_pv_per_site_and_feeder():
    w = NwsGridpointForecast(Path(__file__).parent / "data" / "nws_gridpoint_RAH_40_75.json").weather(
        datetime(2026, 6, 21, tzinfo=UTC), datetime(2026, 6, 22, tzinfo=UTC)
    )
    n = 4
    sites = PvSites(
        np.full(n, 36.1),
        np.full(n, -79.95),
        np.full(n, 20.0),
        np.full(n, 180.0),
        np.full(n, 4000.0),
        np.full(n, 3800.0),
        feeder=np.array([0, 1, 1, 2]),
    )
    per_site, per_feeder = forecast_pv_feeders(sites, w, n_feeders=3)
    assert per_feeder.values.shape == (3, 24, 3)
    assert per_feeder.p90[:, 1] == pytest.approx(2 * per_site.p90[:, 1])


def test_pv_without_weather_comes_from_the_metered_history():
    """No weather source: the sites' metered power (PVWatts on the Greensboro TMY3, 14 days,
    hourly) gives the next 4 hours by CLIPER; with a weather forecast the history is not used."""
    s = PvSites(
        np.full(4, 36.1),
        np.full(4, -79.95),
        np.full(4, 20.0),
        np.array([150.0, 180.0, 180.0, 210.0]),
        np.full(4, 4000.0),
        np.full(4, 3800.0),
        feeder=np.array([0, 1, 1, 2]),
    )
    tmy = TmyFileSource(pvlib_data_file("723170TYA.CSV"))
    w = tmy.weather(datetime(2026, 6, 7, tzinfo=UTC), datetime(2026, 6, 21, 15, tzinfo=UTC))
    metered = pvwatts_ac(s, w.times, w.ghi[:, None], w.temp_air[:, None], w.wind_speed[:, None], 3600)
    history = {"history_times": w.times, "history_w": metered}
    per_site, per_feeder = forecast_pv_feeders(s, None, n_feeders=3, horizon_s=HORIZONS["4 h"], **history)
    assert per_site.times[0] == np.datetime64("2026-06-21T15:00:00")
    assert per_site.values == pytest.approx(forecast_pv_from_history(s, w.times, metered, 4).values)
    assert per_feeder.values.shape == (3, 4, 3) and (per_feeder.p50[:, 1] > 1000.0).all()  # 11:00-15:00 EDT
    assert per_feeder.p50[:, 1] == pytest.approx(per_site.p50[:, 1] + per_site.p50[:, 2])
    ahead = tmy.weather(datetime(2026, 6, 21, 15, tzinfo=UTC), datetime(2026, 6, 21, 19, tzinfo=UTC))
    with_weather, _ = forecast_pv_feeders(s, ahead, horizon_s=HORIZONS["4 h"], **history)
    assert with_weather.values == pytest.approx(forecast_pv(s, ahead).values)
    with pytest.raises(ValueError, match="without a weather forecast"):
        forecast_pv_feeders(s, None)
    with pytest.raises(ValueError, match="multiple"):
        forecast_pv_feeders(s, None, horizon_s=HORIZONS["15 min"], **history)  # hourly data
