"""PV forecast from the sites' own power history (CLIPER on the clear-sky power index)."""

import numpy as np
import pytest

from derms.forecast import pv
from derms.forecast.pv import PvSites
from derms.forecast.pv_history import clear_sky_power, forecast_pv_from_history


def sites() -> PvSites:
    return PvSites(
        latitude=np.full(2, 36.1),
        longitude=np.full(2, -79.95),
        surface_tilt=np.full(2, 25.0),
        surface_azimuth=np.array([180.0, 200.0]),
        pdc0_w=np.full(2, 5000.0),
        pac0_w=np.full(2, 4600.0),
    )


def history() -> tuple[np.ndarray, np.ndarray]:
    """Hourly, 1 June 2026 00:00 UTC to 5 June 16:00 UTC: 0.4 x clear-sky power, except the
    last 24 hours at 0.8 x clear-sky power."""
    times = np.datetime64("2026-06-01T00:00:00") + np.arange(4 * 24 + 17) * np.timedelta64(3600, "s")
    s = sites()
    power = 0.4 * clear_sky_power(s, times, 3600)
    power[-24:] *= 2.0
    return times, power


def test_cliper_on_the_power_index_worked_by_hand():
    """Index now 0.8, mean of the last day 0.8; climatology at every hour median(0.4, 0.4, 0.4,
    0.8[, 0.4]) = 0.4. Persistence weights 0.95 at 1 h, 0.65 at 4 h, 0.20 from 24 h:
    1 h: 0.95 x 0.8 + 0.05 x 0.4 = 0.78; 4 h: 0.65 x 0.8 + 0.35 x 0.4 = 0.66;
    24-36 h: 0.2 x 0.8 + 0.8 x 0.4 = 0.48 — times the clear-sky power at the target."""
    s = sites()
    times, power = history()
    fc = forecast_pv_from_history(s, times, power, 36)
    clear = clear_sky_power(s, fc.times, 3600)
    lit = clear > 0.1 * 4600.0
    assert fc.times[0] == np.datetime64("2026-06-05T17:00:00")
    assert fc.p50[0][lit[0]] == pytest.approx(0.78 * clear[0][lit[0]])
    assert fc.p50[3][lit[3]] == pytest.approx(0.66 * clear[3][lit[3]])
    day = lit[23:]
    assert day.any() and fc.p50[23:][day] == pytest.approx(0.48 * clear[23:][day])
    assert (fc.p10 <= fc.p50).all() and (fc.p50 <= fc.p90).all() and (fc.p90 <= 4600.0).all()
    assert (fc.p50[~(clear > 0)] == 0).all()


def test_missing_history_is_not_zero():
    """A whole unmetered day (NaN) drops out of the climatology: medians stay 0.4, so the
    forecast is unchanged; zeros instead would have pulled the climatology down."""
    s = sites()
    times, power = history()
    base = forecast_pv_from_history(s, times, power, 30).p50
    power[:24] = np.nan
    assert forecast_pv_from_history(s, times, power, 30).p50 == pytest.approx(base)


def test_bad_input_is_refused():
    s = sites()
    times, power = history()
    with pytest.raises(ValueError, match="must be"):
        forecast_pv_from_history(s, times, power[:, :1], 4)
    with pytest.raises(ValueError, match="regular"):
        forecast_pv_from_history(s, np.delete(times, 5), np.delete(power, 5, axis=0), 4)
    with pytest.raises(ValueError, match="one day"):
        forecast_pv_from_history(s, times[:10], power[:10], 4)
    with pytest.raises(ValueError, match="quantiles"):
        forecast_pv_from_history(s, times, power, 4, quantiles=(0.2, 0.5))


def test_climatology_over_days_matches_median_per_time_of_day(monkeypatch):
    """History starting mid-morning (partial first and last days), one site unmetered for a
    day, sites in blocks of 2: a day ahead the P50 is ``(0.2 p + 0.8 c) P_clear`` with ``c``
    the median index of each time of day and ``p`` the mean index of the last day."""
    rng = np.random.default_rng(7)
    n = 5
    s = PvSites(
        latitude=np.linspace(33.0, 40.0, n),
        longitude=np.linspace(-85.0, -75.0, n),
        surface_tilt=np.full(n, 25.0),
        surface_azimuth=np.linspace(150.0, 210.0, n),
        pdc0_w=np.full(n, 5000.0),
        pac0_w=np.full(n, 4600.0),
    )
    times = np.datetime64("2026-05-03T09:30:00") + np.arange(6 * 48 + 11) * np.timedelta64(1800, "s")
    clear = clear_sky_power(s, times, 1800)
    power = clear * rng.uniform(0.2, 1.0, clear.shape)
    power[48:96, 2] = np.nan
    monkeypatch.setattr(pv, "BLOCK_ELEMENTS", 2 * len(times))
    fc = forecast_pv_from_history(s, times, power, 96)
    lit = clear > 0.05 * 4600.0
    index = np.where(lit, np.clip(power / np.where(lit, clear, 1.0), 0.0, 1.2), np.nan)
    phase = (times - times.astype("datetime64[D]")).astype(int) // 1800
    target_phase = (fc.times - fc.times.astype("datetime64[D]")).astype(int) // 1800
    p = np.nanmean(index[-48:], axis=0)
    clear_next = clear_sky_power(s, fc.times, 1800)
    checked = 0
    for step in range(48, 96):  # leads of 24.5 h and more: weight 0.2
        rows = index[phase == target_phase[step]]
        for j in range(n):
            if np.isfinite(rows[:, j]).any():
                c = np.nanmedian(rows[:, j])
                expected = min((0.2 * p[j] + 0.8 * c) * clear_next[step, j], 4600.0)
                assert fc.p50[step, j] == pytest.approx(expected, rel=1e-9, abs=1e-9)
                checked += 1
    assert checked > 100
