"""Load forecasts on real demand (Taylor 2003, shipped in pmdarima), naive baselines and metrics."""

import numpy as np
import pytest

from derms.forecast import metrics
from derms.forecast.backtest import taylor_load
from derms.forecast.load import fit_load_model, forecast_load, predict_at
from derms.forecast.naive import persistence, residual_quantiles, seasonal_naive

pytest.importorskip("pmdarima", reason="the 'backtest' extra (pmdarima) carries the real load series")

TRAIN = 56 * 48  # eight weeks of half-hours


@pytest.fixture(scope="module")
def series():
    return taylor_load()


@pytest.fixture(scope="module")
def model(series):
    times, y = series
    return fit_load_model(
        times[:TRAIN],
        y[:TRAIN],
        interval_s=1800,
        max_horizon=48,
        timezone="Europe/London",
        samples=3000,
        max_iter=40,
    )


def test_taylor_series_is_the_published_one(series):
    times, y = series
    assert len(y) == 4032 and y[:3] == pytest.approx([22262e6, 21756e6, 22247e6])  # Taylor (2003), MW -> W
    assert str(times[0]) == "2000-06-04T23:00:00"  # Monday 5 June 2000 00:00 BST


def test_day_ahead_quantiles_are_ordered_and_beat_persistence(series, model):
    times, y = series
    f = forecast_load(model, times[:TRAIN], y[:TRAIN], 48)
    assert f.values.shape == (3, 48, 1) and f.kind == "demand"
    assert (np.diff(f.values, axis=0) >= 0).all()
    assert f.times[0] == times[TRAIN]
    actual = y[TRAIN : TRAIN + 48]
    assert metrics.mae(actual, f.p50[:, 0]) < metrics.mae(actual, np.full(48, y[TRAIN - 1]))


def test_predict_at_replays_a_backtest_without_look_ahead(series, model):
    times, y = series
    issue = np.arange(TRAIN - 1, TRAIN + 200, 10)
    h = np.full_like(issue, 8)
    q = predict_at(model, times, y, issue, np.zeros_like(issue), h)
    poisoned = y.copy()
    poisoned[TRAIN + 300 :] = 0.0  # values after every issue must not matter
    assert predict_at(model, times, poisoned, issue, np.zeros_like(issue), h) == pytest.approx(q)


def test_bad_requests(series, model):
    times, y = series
    hist = y[:TRAIN].copy()
    hist[-1] = np.nan
    with pytest.raises(ValueError, match="newest observation"):
        forecast_load(model, times[:TRAIN], hist, 4)
    with pytest.raises(ValueError, match="n_steps"):
        forecast_load(model, times[:TRAIN], y[:TRAIN], 49)
    with pytest.raises(ValueError, match="regular grid"):
        forecast_load(model, times[:TRAIN][::-1], y[:TRAIN], 4)


def test_naive_forecasts_by_hand():
    y = np.arange(100.0)
    issue = np.array([50, 60])
    assert persistence(y, issue, 3) == pytest.approx([50, 60])
    assert seasonal_naive(y, issue, 3, 24) == pytest.approx([29, 39])  # same hour on the last observed day
    assert seasonal_naive(y, issue, 30, 24) == pytest.approx([32, 42])  # two seasons back
    assert residual_quantiles(np.array([1.0, 2, 3, np.nan]), np.zeros(4), (0.5,)) == pytest.approx([2.0])


def test_metrics_by_hand_and_nan_is_skipped():
    actual = np.array([10.0, 20.0, np.nan, 40.0])
    forecast = np.array([12.0, 15.0, 99.0, 40.0])
    assert metrics.mae(actual, forecast) == pytest.approx(7 / 3)
    assert metrics.nmae(actual, forecast) == pytest.approx((7 / 3) / (70 / 3))
    # q=0.9: under-forecast 5 costs 4.5, over-forecast 2 costs 0.2 -> (0.2 + 4.5 + 0) / 3
    assert metrics.pinball(actual, forecast, 0.9) == pytest.approx(4.7 / 3)
    assert metrics.coverage(actual, actual - 1, forecast) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        metrics.mae(np.array([np.nan]), np.array([1.0]))


def test_temperature_feature_is_used_when_load_follows_the_weather(series):
    """Cooling load driven by Greensboro's TMY3 temperature on top of the real demand shape.

    The cooling term (3 % of load per °C above 22 °C) is constructed here, so a model that
    sees the forecast temperature must beat one that does not on the same data.
    """
    from datetime import UTC, datetime

    from derms.forecast.weather import TmyFileSource, pvlib_data_file

    times, y = series
    w = TmyFileSource(pvlib_data_file("723170TYA.CSV")).weather(
        datetime(2000, 6, 4, 23, tzinfo=UTC), datetime(2000, 8, 28, 0, tzinfo=UTC)
    )
    temp = np.repeat(w.temp_air, 2)[: len(y)]  # hourly values held over both half-hours
    load = y * (1 + 0.03 * np.clip(temp - 22.0, 0, None))
    kw = dict(interval_s=1800, max_horizon=48, timezone="Europe/London", samples=3000, max_iter=40)
    with_t = fit_load_model(times[:TRAIN], load[:TRAIN], temperature=temp[:TRAIN], **kw)
    without = fit_load_model(times[:TRAIN], load[:TRAIN], **kw)
    issue = np.arange(TRAIN - 1, len(y) - 48, 24)
    h = np.full_like(issue, 48)
    zeros = np.zeros_like(issue)
    p_with = predict_at(with_t, times, load, issue, zeros, h, temperature=temp[issue + h])[1]
    p_without = predict_at(without, times, load, issue, zeros, h)[1]
    assert metrics.mae(load[issue + h], p_with) < 0.9 * metrics.mae(load[issue + h], p_without)
    with pytest.raises(ValueError, match="temperature"):
        predict_at(with_t, times, load, issue, zeros, h)
