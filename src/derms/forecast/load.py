"""Load forecasts per site and feeder: gradient-boosted quantile regression.

One *global* model serves every series and every horizon up to ``max_horizon`` steps
(the "direct" multi-horizon strategy with the horizon as a feature; Taieb et al. 2012).
Series are divided by their own recent mean so sites and feeders of any size share it.
Features for a target ``j = i + h`` issued at ``i``: horizon ``h``; local hour of day
(sine/cosine), day of week and weekend flag of the target; the last observation ``y[i]``;
the same time on the latest observed day and week; the mean of the last day; and, when
given, the forecast air temperature at the target. One
:class:`~sklearn.ensemble.HistGradientBoostingRegressor` with quantile loss is fitted per
quantile level (Friedman 2001; Koenker & Bassett 1978); crossing quantiles are sorted
(Chernozhukov, Fernández-Val & Galichon 2010). With three weeks of history or more, the
last week is held out and the outermost quantiles are widened (or narrowed) by the split
conformal margin of conformalized quantile regression (Romano, Patterson & Candès 2019),
so the P10–P90 band covers about 80 % out of sample, not only in sample.

References
----------
.. [1] Friedman, J. H. (2001). Greedy function approximation: a gradient boosting machine.
   Annals of Statistics 29(5), 1189-1232.
.. [2] Ben Taieb, S., Bontempi, G., Atiya, A., Sorjamaa, A. (2012). A review and comparison of
   strategies for multi-step ahead time series forecasting. Expert Systems with Applications 39(8).
.. [4] Romano, Y., Patterson, E., Candès, E. (2019). Conformalized quantile regression. NeurIPS 32.
.. [3] Chernozhukov, V., Fernández-Val, I., Galichon, A. (2010). Quantile and probability curves
   without crossing. Econometrica 78(3), 1093-1125.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from derms.forecast.quantiles import QuantileForecast

DAY_S = 86400
THREADS = 1
"""OpenMP threads for scikit-learn's boosting. One: derms shares its cores with the API,
the bus and the optimizer, and on a busy machine OpenMP's spinning threads cost far more
than they gain (a 4x slowdown measured on a loaded 2-core host)."""


@dataclass(frozen=True)
class LoadModel:
    """A fitted load model; see :func:`fit_load_model`."""

    quantiles: tuple[float, ...]
    interval_s: int
    max_horizon: int
    timezone: str
    uses_temperature: bool
    models: tuple[object, ...]
    band_margin: float = 0.0
    """Conformal margin added outside the outermost quantiles, relative to the series scale [-]."""

    @property
    def steps_per_day(self) -> int:
        return DAY_S // self.interval_s


def _check_grid(times: np.ndarray, interval_s: int) -> np.ndarray:
    times = np.asarray(times).astype("datetime64[s]")
    if DAY_S % interval_s:
        raise ValueError("interval_s must divide one day")
    if len(times) > 1 and not np.all(np.diff(times).astype(int) == interval_s):
        raise ValueError("times must be a regular grid with step interval_s")
    return times


def _calendar(target_times: np.ndarray, timezone: str) -> np.ndarray:
    local = pd.DatetimeIndex(target_times.ravel()).tz_localize("UTC").tz_convert(timezone)
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
    dow = local.dayofweek.to_numpy()
    ang = 2 * np.pi * hour / 24.0
    cal = np.stack([np.sin(ang), np.cos(ang), dow, (dow >= 5).astype(float)], axis=1)
    return cal.reshape((*target_times.shape, 4))


def _features(
    y: np.ndarray,
    issue: np.ndarray,
    series: np.ndarray,
    horizon: np.ndarray,
    times: np.ndarray,
    target_times: np.ndarray,
    temperature: np.ndarray | None,
    m: int,
    timezone: str,
) -> np.ndarray:
    """Feature rows for (issue index, series, horizon) triples, and each row's scale.

    ``y`` is the ``(T, N)`` history (NaN = missing); the scale is the mean of the week that
    ends at the issue, so the model sees loads relative to their recent level.
    """
    target = issue + horizon
    day_lag = target - m * (-(-horizon // m))
    week_lag = target - 7 * m * (-(-horizon // (7 * m)))
    filled = np.nan_to_num(y)
    count = np.vstack([np.zeros((1, y.shape[1])), np.cumsum(np.isfinite(y), axis=0)])
    cs = np.vstack([np.zeros((1, y.shape[1])), np.cumsum(filled, axis=0)])
    week0 = np.maximum(issue + 1 - 7 * m, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (cs[issue + 1, series] - cs[week0, series]) / (count[issue + 1, series] - count[week0, series])
        day0 = np.maximum(issue + 1 - m, 0)
        day_mean = (cs[issue + 1, series] - cs[day0, series]) / (
            count[issue + 1, series] - count[day0, series]
        )
    s = np.where(np.isfinite(s) & (np.abs(s) > 0), np.abs(s), 1.0)
    cols = [
        horizon.astype(float),
        y[issue, series] / s,
        y[day_lag, series] / s,
        y[week_lag, series] / s,
        day_mean / s,
    ]
    cal = _calendar(target_times, timezone)
    feats = np.column_stack([*cols, cal])
    if temperature is not None:
        feats = np.column_stack([feats, temperature])
    return feats, s


def fit_load_model(
    times: np.ndarray,
    load_w: np.ndarray,
    *,
    interval_s: int,
    max_horizon: int,
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
    temperature: np.ndarray | None = None,
    timezone: str = "UTC",
    samples: int = 12_000,
    seed: int = 0,
    max_iter: int = 120,
) -> LoadModel:
    """Fit the global quantile model on history ``load_w`` [W], shape ``(T,)`` or ``(T, N)``.

    ``times`` are interval starts (UTC ``datetime64``); ``temperature`` [°C] has the shape
    of ``load_w`` (observed, used as a perfect forecast in training). At least one week
    plus ``max_horizon`` steps of history are needed. NaN loads are skipped as targets.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    times = _check_grid(times, interval_s)
    y = np.asarray(load_w, float).reshape(len(times), -1)
    temp = None if temperature is None else np.asarray(temperature, float).reshape(y.shape)
    m = DAY_S // interval_s
    first = 7 * m
    if len(times) < first + max_horizon + 1:
        raise ValueError(f"need at least {first + max_horizon + 1} intervals of history, got {len(times)}")
    rng = np.random.default_rng(seed)
    # Split conformal calibration (CQR): hold out the last week when there are three weeks.
    cal_start = len(times) - 7 * m if len(times) >= 2 * first + max_horizon + 1 else len(times)

    def draw(n: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        horizon = rng.integers(1, max_horizon + 1, n)
        issue = rng.integers(lo, np.maximum(hi - horizon, lo + 1))
        series = rng.integers(0, y.shape[1], n)
        keep = (issue + horizon < len(times)) & ~np.isnan(
            y[np.minimum(issue + horizon, len(times) - 1), series]
        )
        return issue[keep], series[keep], horizon[keep]

    def rows(issue: np.ndarray, series: np.ndarray, horizon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        target = issue + horizon
        x, scale = _features(
            y,
            issue,
            series,
            horizon,
            times,
            times[target],
            None if temp is None else temp[target, series],
            m,
            timezone,
        )
        return x, y[target, series] / scale

    x, label = rows(*draw(samples, first - 1, cal_start))
    models = []
    with threadpool_limits(limits=THREADS, user_api="openmp"):
        for q in quantiles:
            model = HistGradientBoostingRegressor(
                loss="quantile",
                quantile=q,
                max_iter=max_iter,
                learning_rate=0.1,
                categorical_features=None,
                early_stopping=False,
                random_state=seed,
            )
            models.append(model.fit(x, label))
        margin = 0.0
        if cal_start < len(times) and len(quantiles) >= 2:
            xc, yc = rows(*draw(max(samples // 4, 500), cal_start - 1, len(times)))
            lo, hi = models[0].predict(xc), models[-1].predict(xc)
            score = np.maximum(lo - yc, yc - hi)
            level = min(1.0, (quantiles[-1] - quantiles[0]) * (1 + 1 / len(score)))
            margin = float(np.quantile(score, level))
    return LoadModel(
        tuple(quantiles), interval_s, max_horizon, timezone, temp is not None, tuple(models), margin
    )


def predict_at(
    model: LoadModel,
    times: np.ndarray,
    load_w: np.ndarray,
    issue: np.ndarray,
    series: np.ndarray,
    horizon: np.ndarray,
    temperature: np.ndarray | None = None,
) -> np.ndarray:
    """Quantile forecasts ``(Q, rows)`` [W] for arbitrary (issue index, series, horizon) rows.

    Only values up to each row's issue index are used, so one call can replay a whole
    backtest. ``temperature`` [°C] is per row, at the target.
    """
    times = _check_grid(times, model.interval_s)
    y = np.asarray(load_w, float).reshape(len(times), -1)
    m = model.steps_per_day
    if np.any(horizon < 1) or np.any(horizon > model.max_horizon):
        raise ValueError(f"horizons must be within 1..{model.max_horizon}")
    if np.any(issue < 7 * m - 1):
        raise ValueError("each issue needs one week of history before it")
    if model.uses_temperature and temperature is None:
        raise ValueError("this model needs a temperature forecast")
    target = issue + horizon
    pad = int(max(0, target.max() - (len(times) - 1)))
    if pad:
        y = np.vstack([y, np.full((pad, y.shape[1]), np.nan)])
        times = np.concatenate(
            [times, times[-1] + np.arange(1, pad + 1) * np.timedelta64(model.interval_s, "s")]
        )
    x, scale = _features(
        y,
        issue,
        series,
        horizon,
        times,
        times[target],
        temperature if model.uses_temperature else None,
        m,
        model.timezone,
    )
    with threadpool_limits(limits=THREADS, user_api="openmp"):
        pred = np.stack([mdl.predict(x) for mdl in model.models])
    pred = np.sort(pred, axis=0)
    if len(model.quantiles) >= 2:
        pred[0] -= model.band_margin
        pred[-1] += model.band_margin
    return np.sort(pred, axis=0) * scale[None, :]


def forecast_load(
    model: LoadModel,
    times: np.ndarray,
    load_w: np.ndarray,
    n_steps: int,
    *,
    temperature_forecast: np.ndarray | None = None,
) -> QuantileForecast:
    """Forecast the ``n_steps`` intervals after the history, per series [W of demand].

    ``load_w`` is the history ``(T,)`` or ``(T, N)`` ending at the issue time (the last
    interval is the newest observation); at least one week is needed.
    ``temperature_forecast`` [°C] is ``(n_steps, N)`` when the model uses temperature.
    """
    times = _check_grid(times, model.interval_s)
    y = np.asarray(load_w, float).reshape(len(times), -1)
    if not 1 <= n_steps <= model.max_horizon:
        raise ValueError(f"n_steps must be within 1..{model.max_horizon}")
    if np.isnan(y[-1]).any():
        raise ValueError("the newest observation is missing (NaN) for some series; fill or drop them first")
    n = y.shape[1]
    horizon = np.repeat(np.arange(1, n_steps + 1), n)
    series = np.tile(np.arange(n), n_steps)
    issue = np.full(len(horizon), len(times) - 1)
    temp = None
    if temperature_forecast is not None:
        temp = np.asarray(temperature_forecast, float).reshape(n_steps, n)[horizon - 1, series]
    pred = predict_at(model, times, y, issue, series, horizon, temp)
    out_times = times[-1] + np.arange(1, n_steps + 1) * np.timedelta64(model.interval_s, "s")
    values = pred.reshape(len(model.quantiles), n_steps, n)
    return QuantileForecast(out_times, model.interval_s, model.quantiles, values, kind="demand")
