"""Clear-sky-index error quantiles that turn a PV point forecast into quantiles.

The default is measured on real weather: the Greensboro NC TMY3 file shipped with pvlib
(NSRDB, Wilcox & Marion 2008), using as "forecast" the previous day's mean clear-sky
index — a deliberately modest day-ahead forecast, so the default bands are wide rather
than over-confident. Calibrate on your own forecast history with :func:`kt_error_quantiles`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import numpy as np

from derms.forecast.solar import clear_sky_ghi, solar_angles
from derms.forecast.weather import TmyFileSource, pvlib_data_file

LEVELS = (0.05, 0.1, 0.25, 0.75, 0.9, 0.95)


def kt_error_quantiles(
    kt_actual: np.ndarray, kt_forecast: np.ndarray, levels: tuple[float, ...] = LEVELS
) -> dict[float, float]:
    """Empirical quantiles of ``kt_actual - kt_forecast`` (NaN pairs ignored)."""
    err = np.asarray(kt_actual, float) - np.asarray(kt_forecast, float)
    err = err[np.isfinite(err)]
    if err.size < 50:
        raise ValueError(f"need at least 50 paired clear-sky indices, got {err.size}")
    return {q: float(v) for q, v in zip(levels, np.quantile(err, levels), strict=True)}


def clear_sky_index(times: np.ndarray, ghi: np.ndarray, latitude: float, longitude: float, interval_s: int):
    """Clear-sky index ``GHI / GHI_clear`` (Haurwitz) at interval midpoints; NaN when the sun is low."""
    mid = times.astype("datetime64[s]") + np.timedelta64(interval_s // 2, "s")
    zenith, _ = solar_angles(mid, np.array([latitude]), np.array([longitude]))
    clear = clear_sky_ghi(zenith[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(clear > 50.0, np.clip(ghi / clear, 0.0, 1.2), np.nan)


@cache
def default_kt_errors() -> dict[float, float]:
    """Day-ahead clear-sky-index error quantiles measured on pvlib's Greensboro TMY3."""
    source = TmyFileSource(pvlib_data_file("723170TYA.CSV"))
    w = source.weather(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    kt = clear_sky_index(w.times, w.ghi, w.latitude, w.longitude, w.interval_s).reshape(-1, 24)
    daily = np.nanmean(kt, axis=1)
    forecast = np.repeat(daily[:-1], 24).reshape(-1, 24)
    return kt_error_quantiles(kt[1:], forecast)
