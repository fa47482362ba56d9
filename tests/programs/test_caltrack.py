"""CalTRACK daily regression baseline through opendsm: one small fit (slow: opendsm JIT-compiles)."""

from datetime import UTC, datetime

import numpy as np
import pytest

from derms.forecast.weather import TmyFileSource, pvlib_data_file

pytest.importorskip("opendsm", reason="the 'mv' extra (opendsm) implements CalTRACK")

from derms.programs.caltrack import caltrack_daily_baseline


def house():
    """Daily use of a house with a known degree-day response on Greensboro's TMY3 temperatures.

    20 kWh/day base load, 1.5 kWh per cooling degree-day above 21 °C, 1.0 kWh per heating
    degree-day below 15 °C, plus seeded meter noise (σ = 1.5 kWh).
    """
    w = TmyFileSource(pvlib_data_file("723170TYA.CSV")).weather(
        datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    )
    days = np.arange(np.datetime64("2025-01-01"), np.datetime64("2026-03-01"))
    t = w.temp_air.reshape(-1, 24).mean(axis=1)
    noise = np.random.default_rng(1).normal(0.0, 1.5, len(days))
    kwh = 20 + 1.5 * np.clip(t - 21, 0, None) + 1.0 * np.clip(15 - t, 0, None) + noise
    return days, kwh * 1000.0, w


@pytest.mark.slow
def test_caltrack_recovers_a_degree_day_house_and_skips_missing_days():
    days, wh, w = house()
    base = days < np.datetime64("2026-01-01")
    baseline_wh = wh[base].copy()
    baseline_wh[100:110] = np.nan  # ten unmetered days: dropped by CalTRACK, never read as zero
    r = caltrack_daily_baseline(
        days[base], baseline_wh, days[~base], w.times, w.temp_air, timezone="America/New_York"
    )
    assert "hdd" in r.model_type and "cdd" in r.model_type
    assert not r.disqualification
    actual = wh[~base]
    assert np.mean(np.abs(r.predicted_wh - actual)) / actual.mean() < 0.08
    with pytest.raises(ValueError, match="disqualified"):
        caltrack_daily_baseline(days[:120], wh[:120], days[120:150], w.times, w.temp_air)
