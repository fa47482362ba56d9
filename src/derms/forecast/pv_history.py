"""PV forecast from the sites' own power history, for when no weather forecast is at hand.

Each site's clear-sky power index ``k = P / P_clear`` (Engerer & Mills 2014), where
``P_clear`` is the PVWatts AC power of the site under Haurwitz clear sky, is forecast by
CLIPER (:mod:`derms.forecast.cliper`): persistence ``p`` — the index of the newest interval,
or the mean index over the last day for a day ahead or when the sun is down now — combined
with climatology ``c`` — the median index at the same time of day over the history — as
``w p + (1 - w) c``. The weight falls with lead time; the default curve is the one fitted on
the Greensboro TMY3 backtest (1.0 at 0 h, 0.95 at 1 h, 0.65 at 4 h, 0.20 from 24 h, linear
in between; see docs/forecasting.md). The forecast is ``k_f P_clear`` at the target, and the
quantiles add clear-sky-index errors as :func:`derms.forecast.pv.forecast_pv` does.

References
----------
.. [1] Engerer, N. A., Mills, F. P. (2014). KPV: A clear-sky index for photovoltaics.
   Solar Energy 105, 679-693.
.. [2] Yang, D. (2019). Making reference solar forecasts with climatology, persistence, and
   their optimal convex combination. Solar Energy 193, 981-985.
"""

from __future__ import annotations

import warnings

import numpy as np

from derms.forecast.cliper import cliper
from derms.forecast.pv import KT_MAX, PvSites, pvwatts_ac, site_blocks
from derms.forecast.quantiles import QuantileForecast
from derms.forecast.solar import clear_sky_ghi, solar_angles

WEIGHT_LEAD_H = (0.0, 1.0, 4.0, 24.0)
WEIGHT = (1.0, 0.95, 0.65, 0.20)
"""Default CLIPER weight of persistence against lead time [h] (Greensboro TMY3 backtest)."""
MIN_CLEAR_FRACTION = 0.05
"""Intervals whose clear-sky power is below this share of the AC rating carry no index."""


def clear_sky_power(sites: PvSites, times: np.ndarray, interval_s: int) -> np.ndarray:
    """PVWatts AC power [W] ``(T, N)`` under Haurwitz clear sky at 20 °C air and 1 m/s wind."""
    mid = times.astype("datetime64[s]") + np.timedelta64(interval_s // 2, "s")
    zenith, azimuth = solar_angles(mid, sites.latitude, sites.longitude)
    return pvwatts_ac(sites, times, clear_sky_ghi(zenith), 20.0, 1.0, interval_s, angles=(zenith, azimuth))


def forecast_pv_from_history(
    sites: PvSites,
    times: np.ndarray,
    power_w: np.ndarray,
    n_steps: int,
    *,
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
    kt_errors: dict[float, float] | None = None,
) -> QuantileForecast:
    """Per-site PV forecast [W] for the ``n_steps`` intervals after the history.

    ``times`` are the history's UTC interval starts, regular and at least one day long;
    ``power_w`` is the metered AC power ``(T, N)``, NaN where not metered (never read as
    zero). ``kt_errors`` as for :func:`~derms.forecast.pv.forecast_pv` (default: the
    Greensboro TMY3 day-ahead errors).
    """
    times = np.asarray(times).astype("datetime64[s]")
    power = np.asarray(power_w, float)
    if power.shape != (len(times), len(sites)):
        raise ValueError(f"power_w must be (T={len(times)}, N={len(sites)}); got {power.shape}")
    if len(times) < 2 or n_steps < 1:
        raise ValueError("need at least two history intervals and one step to forecast")
    step = np.diff(times).astype(int)
    interval_s = int(step[0])
    if np.any(step != interval_s) or 86400 % interval_s:
        raise ValueError("times must be regular with an interval that divides a day")
    per_day = 86400 // interval_s
    if len(times) < per_day:
        raise ValueError(f"need at least one day of history ({per_day} intervals)")
    if kt_errors is None:
        from derms.forecast.calibration import default_kt_errors

        kt_errors = default_kt_errors()
    missing = [q for q in quantiles if q != 0.5 and q not in kt_errors]
    if missing:
        raise ValueError(f"no clear-sky-index error known for quantiles {missing}")

    targets = times[-1] + np.arange(1, n_steps + 1) * np.timedelta64(interval_s, "s")
    values = np.empty((len(quantiles), n_steps, len(sites)))
    for rows in site_blocks(len(sites), len(times)):
        values[:, :, rows] = _forecast_block(
            sites.rows(rows), times, power[:, rows], targets, interval_s, quantiles, kt_errors
        )
    return QuantileForecast(times=targets, interval_s=interval_s, quantiles=quantiles, values=values)


def _forecast_block(
    sites: PvSites,
    times: np.ndarray,
    power: np.ndarray,
    targets: np.ndarray,
    interval_s: int,
    quantiles: tuple[float, ...],
    kt_errors: dict[float, float],
) -> np.ndarray:
    """:func:`forecast_pv_from_history` for a block of sites (checked inputs): ``(Q, steps, N)``."""
    per_day = 86400 // interval_s
    clear_hist = clear_sky_power(sites, times, interval_s)
    clear_next = clear_sky_power(sites, targets, interval_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.where(
            clear_hist > MIN_CLEAR_FRACTION * sites.pac0_w[None, :],
            np.clip(power / clear_hist, 0.0, KT_MAX),
            np.nan,
        )
    # The history laid out by (day, time of day), NaN where it has no interval: the
    # climatology is one median over days, taken only where some day has an index (night
    # slices are all NaN, and NumPy warns once per all-NaN slice).
    day = (times.astype("datetime64[D]") - times[0].astype("datetime64[D]")).astype(int)
    by_day = np.full((day[-1] + 1, per_day, len(sites)), np.nan)
    by_day[day, _phase(times, interval_s)] = index
    seen = np.isfinite(by_day).any(axis=0)
    climatology = np.full((per_day, len(sites)), np.nan)
    climatology[seen] = np.nanmedian(by_day[:, seen], axis=0)
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):  # all-NaN nights
        day_mean = np.nanmean(index[-per_day:], axis=0)
    now = index[-1]
    n_steps = len(targets)
    lead_h = np.arange(1, n_steps + 1) * interval_s / 3600.0
    w = np.interp(lead_h, WEIGHT_LEAD_H, WEIGHT)[:, None]
    persist = np.where((lead_h[:, None] < 24.0) & np.isfinite(now)[None, :], now[None, :], day_mean[None, :])
    clim = climatology[_phase(targets, interval_s)]
    k = cliper(persist, clim, w)
    k = np.where(np.isfinite(k), k, 1.0)  # nothing ever observed at this hour: clear sky
    values = np.empty((len(quantiles), n_steps, len(sites)))
    for i, q in enumerate(quantiles):
        k_q = k if q == 0.5 else np.clip(k + kt_errors[q], 0.0, KT_MAX)
        values[i] = np.minimum(k_q * clear_next, sites.pac0_w[None, :])
    values.sort(axis=0)
    return values


def _phase(times: np.ndarray, interval_s: int) -> np.ndarray:
    """Position of each interval within its UTC day."""
    return (
        (times - times.astype("datetime64[D]")).astype("timedelta64[s]").astype(int) // interval_s
    ).astype(int)
