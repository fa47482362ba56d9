"""The forecasting API the orchestrator's rolling horizon consumes.

Each call returns per-interval quantile arrays (:class:`QuantileForecast`, ``(Q, T, N)``)
for the next ``horizon_s`` seconds after the newest observation, together with the two
naive references computed the same way — persistence and seasonal naive, whose quantiles
come from their own in-sample residuals at each step ahead — so every forecast can be
judged against them in operation, not only in backtests.

Standard horizons: :data:`HORIZONS` (15 min, 4 h, day-ahead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from derms.forecast.load import LoadModel, forecast_load
from derms.forecast.naive import residual_quantiles
from derms.forecast.pv import PvSites, forecast_pv
from derms.forecast.pv_history import forecast_pv_from_history
from derms.forecast.quantiles import QuantileForecast
from derms.forecast.weather import WeatherFrame

HORIZONS = {"15 min": 900, "4 h": 4 * 3600, "day-ahead": 24 * 3600}
"""Horizon names and lengths [s]."""


@dataclass(frozen=True, slots=True)
class ForecastBundle:
    """A forecast and its naive references over the same intervals and series."""

    forecast: QuantileForecast
    persistence: QuantileForecast
    seasonal_naive: QuantileForecast


def _steps(horizon_s: int, interval_s: int) -> int:
    if horizon_s <= 0 or horizon_s % interval_s:
        raise ValueError(f"horizon {horizon_s} s must be a positive multiple of the {interval_s} s interval")
    return horizon_s // interval_s


def naive_references(
    times: np.ndarray,
    history: np.ndarray,
    n_steps: int,
    interval_s: int,
    quantiles: tuple[float, ...],
    kind: str,
) -> tuple[QuantileForecast, QuantileForecast]:
    """Persistence and daily seasonal-naive quantile forecasts for the steps after ``history`` ``(T, N)``."""
    y = np.asarray(history, float).reshape(len(times), -1)
    m = 86400 // interval_s
    t = len(y)
    out_times = np.asarray(times).astype("datetime64[s]")[-1] + np.arange(1, n_steps + 1) * np.timedelta64(
        interval_s, "s"
    )
    pers = np.empty((len(quantiles), n_steps, y.shape[1]))
    seas = np.empty_like(pers)
    zeros = np.zeros((len(quantiles), y.shape[1]))
    for h in range(1, n_steps + 1):
        lag = m * -(-h // m)
        past = np.arange(lag, t - h)  # issue points whose outcome is already known
        pers_res = residual_quantiles(y[past + h], y[past], quantiles) if past.size else zeros
        seas_res = residual_quantiles(y[past + h], y[past + h - lag], quantiles) if past.size else zeros
        pers[:, h - 1] = y[-1] + pers_res
        seas[:, h - 1] = y[t - 1 + h - lag] + seas_res
    pers.sort(axis=0)
    seas.sort(axis=0)
    return (
        QuantileForecast(out_times, interval_s, quantiles, pers, kind),
        QuantileForecast(out_times, interval_s, quantiles, seas, kind),
    )


def forecast_feeder_load(
    model: LoadModel,
    times: np.ndarray,
    feeder_load_w: np.ndarray,
    horizon_s: int,
    *,
    temperature_forecast: np.ndarray | None = None,
) -> ForecastBundle:
    """Feeder (or site) demand [W] for the next ``horizon_s`` seconds, with naive references.

    ``feeder_load_w`` is the metered history ``(T, F)`` on ``times`` (UTC interval starts),
    ending at the newest interval; ``model`` comes from :func:`derms.forecast.load.fit_load_model`
    and is usually refitted daily, not per call.
    """
    n_steps = _steps(horizon_s, model.interval_s)
    fc = forecast_load(model, times, feeder_load_w, n_steps, temperature_forecast=temperature_forecast)
    pers, seas = naive_references(times, feeder_load_w, n_steps, model.interval_s, model.quantiles, "demand")
    return ForecastBundle(fc, pers, seas)


def forecast_pv_feeders(
    sites: PvSites,
    weather: WeatherFrame | list[WeatherFrame] | None,
    *,
    n_feeders: int | None = None,
    history_times: np.ndarray | None = None,
    history_w: np.ndarray | None = None,
    horizon_s: int | None = None,
) -> tuple[QuantileForecast, QuantileForecast]:
    """PV injection [W] per site and per feeder (``sites.feeder``).

    With a weather forecast (one frame, or one per ``sites.weather_index``) the PVWatts chain
    (:func:`~derms.forecast.pv.forecast_pv`) runs over the weather's intervals, and any
    history passed is not used. With ``weather=None`` — no weather source configured — the
    forecast comes from the sites' own metered AC power ``history_w`` ``(T, N)`` on
    ``history_times`` (UTC interval starts, NaN where unmetered) for the ``horizon_s``
    seconds after its newest interval (:func:`~derms.forecast.pv_history.forecast_pv_from_history`).
    """
    if weather is not None:
        per_site = forecast_pv(sites, weather)
    else:
        if history_times is None or history_w is None or horizon_s is None:
            raise ValueError("without a weather forecast, pass history_times, history_w and horizon_s")
        times = np.asarray(history_times).astype("datetime64[s]")
        if len(times) < 2:
            raise ValueError("need at least two history intervals")
        interval_s = int((times[1] - times[0]) // np.timedelta64(1, "s"))
        per_site = forecast_pv_from_history(sites, times, history_w, _steps(horizon_s, interval_s))
    return per_site, per_site.roll_up(sites.feeder, n_feeders)
