"""Backtests on real data: our forecasts against persistence and seasonal naive.

Data sets (nothing is downloaded; both ship inside installed packages):

- **Load**: half-hourly electricity demand of England and Wales, Monday 5 June to Sunday
  27 August 2000 (4,032 values, MW; Taylor 2003), as shipped in ``pmdarima`` (MIT) — the
  optional ``backtest`` extra. The first 8 weeks train, the last 4 weeks test.
- **PV**: a 5 kWdc south-facing system at Greensboro NC simulated with PVWatts from the
  measured-irradiance TMY3 file shipped with ``pvlib`` (NSRDB, Wilcox & Marion 2008). The
  first 9 months train (error quantiles), the rest test; daylight hours only, nMAE over
  the AC rating.

Horizons are the data's shortest step (30 min for the load, 1 h for PV — neither data set
has 15-minute resolution), 4 h and day-ahead (24 h). Scores: MAE [W], nMAE [-], mean
pinball loss over P10/P50/P90 [W] and the share of actuals inside P10–P90.

References
----------
.. [1] Taylor, J. W. (2003). Short-term electricity demand forecasting using double seasonal
   exponential smoothing. J. Operational Research Society 54, 799-805.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from derms.forecast import metrics
from derms.forecast.calibration import clear_sky_index, kt_error_quantiles
from derms.forecast.cliper import climatology_term, cliper, fit_weight, persistence_term
from derms.forecast.load import fit_load_model, predict_at
from derms.forecast.naive import persistence, residual_quantiles, seasonal_naive
from derms.forecast.pv import PvSites, forecast_pv, pvwatts_ac
from derms.forecast.solar import clear_sky_ghi, solar_angles
from derms.forecast.weather import TmyFileSource, WeatherFrame, pvlib_data_file

QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True, slots=True)
class BacktestRow:
    """One line of the accuracy table."""

    series: str
    horizon: str
    model: str
    mae_w: float
    nmae: float
    pinball_w: float
    coverage_p10_p90: float
    n: int
    beats_persistence: bool | None = None
    """For our model: lower MAE *and* pinball loss than persistence at this horizon."""


def taylor_load() -> tuple[np.ndarray, np.ndarray]:
    """UTC interval starts and demand [W] of the Taylor (2003) series from ``pmdarima``."""
    try:
        from pmdarima.datasets import load_taylor
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise RuntimeError("the load backtest needs the 'backtest' extra (pmdarima)") from exc
    y = np.asarray(load_taylor(), float) * 1e6
    local = pd.date_range("2000-06-05", periods=len(y), freq="30min", tz="Europe/London")
    return local.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]"), y


def _score(
    series: str, horizon: str, model: str, actual: np.ndarray, q: np.ndarray, scale: float | None
) -> BacktestRow:
    return BacktestRow(
        series=series,
        horizon=horizon,
        model=model,
        mae_w=metrics.mae(actual, q[1]),
        nmae=metrics.nmae(actual, q[1], scale),
        pinball_w=metrics.mean_pinball(actual, q, QUANTILES),
        coverage_p10_p90=metrics.coverage(actual, q[0], q[2]),
        n=int(np.isfinite(actual).sum()),
    )


def _naive_rows(
    series: str,
    label: str,
    y: np.ndarray,
    train_issue: np.ndarray,
    test_issue: np.ndarray,
    h: int,
    season: int,
    scale: float | None,
    keep_train: np.ndarray,
    keep_test: np.ndarray,
) -> list[BacktestRow]:
    rows = []
    for name, point in (
        ("persistence", lambda i: persistence(y, i, h)),
        ("seasonal naive", lambda i: seasonal_naive(y, i, h, season)),
    ):
        res = residual_quantiles(y[train_issue + h][keep_train], point(train_issue)[keep_train], QUANTILES)
        test_point = point(test_issue)[keep_test]
        rows.append(
            _score(
                series, label, name, y[test_issue + h][keep_test], test_point[None, :] + res[:, None], scale
            )
        )
    return rows


def _flag(rows: list[BacktestRow]) -> list[BacktestRow]:
    base = {(r.series, r.horizon): r for r in rows if r.model == "persistence"}
    out = []
    for r in rows:
        if r.model not in ("persistence", "seasonal naive"):
            p = base[(r.series, r.horizon)]
            r = BacktestRow(
                **{**asdict(r), "beats_persistence": r.mae_w < p.mae_w and r.pinball_w < p.pinball_w}
            )
        out.append(r)
    return out


def backtest_load(
    *, stride: int = 4, seed: int = 0, samples: int = 12_000, max_iter: int = 120
) -> list[BacktestRow]:
    """Gradient-boosted quantile load forecast vs naive baselines on the Taylor series."""
    times, y = taylor_load()
    m, train_end = 48, 56 * 48
    model = fit_load_model(
        times[:train_end],
        y[:train_end],
        interval_s=1800,
        max_horizon=m,
        timezone="Europe/London",
        seed=seed,
        samples=samples,
        max_iter=max_iter,
    )
    rows: list[BacktestRow] = []
    for h, label in ((1, "30 min"), (8, "4 h"), (48, "day-ahead")):
        test_issue = np.arange(train_end - 1, len(y) - h, stride)
        train_issue = np.arange(7 * m - 1, train_end - h)
        keep_tr, keep_te = np.ones(len(train_issue), bool), np.ones(len(test_issue), bool)
        rows += _naive_rows("load GB 2000", label, y, train_issue, test_issue, h, m, None, keep_tr, keep_te)
        q = predict_at(model, times, y, test_issue, np.zeros_like(test_issue), np.full_like(test_issue, h))
        rows.append(_score("load GB 2000", label, "gradient boosting", y[test_issue + h], q, None))
    return _flag(rows)


def backtest_pv() -> list[BacktestRow]:
    """PV forecast through the PVWatts chain vs naive baselines.

    With no archived weather forecasts for the TMY year, the clear-sky index that drives
    :func:`forecast_pv` is itself a statistical forecast from the site's own history: CLIPER
    (:mod:`derms.forecast.cliper`), smart persistence blended with the hourly median index,
    the weight per horizon fitted on the training months. An NWS forecast replaces it in
    operation.
    """
    source = TmyFileSource(pvlib_data_file("723170TYA.CSV"))
    w = source.weather(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    site = PvSites(
        latitude=np.array([w.latitude]),
        longitude=np.array([w.longitude]),
        surface_tilt=np.array([25.0]),
        surface_azimuth=np.array([180.0]),
        pdc0_w=np.array([5000.0]),
        pac0_w=np.array([4600.0]),
    )
    actual = pvwatts_ac(site, w.times, w.ghi[:, None], w.temp_air[:, None], w.wind_speed[:, None], 3600)[:, 0]
    kt = clear_sky_index(w.times, w.ghi, w.latitude, w.longitude, 3600)
    train_end = 273 * 24
    mid = w.times + np.timedelta64(1800, "s")
    clear = clear_sky_ghi(solar_angles(mid, site.latitude, site.longitude)[0][:, 0])
    rows: list[BacktestRow] = []
    for h, label in ((1, "1 h"), (4, "4 h"), (24, "day-ahead")):
        issue = np.arange(24, len(actual) - h)
        target = issue + h
        # CLIPER (Yang 2019): persistence of the clear-sky index blended with the median index
        # at the target's hour over the days already observed; weight fitted on training months
        p = persistence_term(kt, issue, h, 24)
        c = climatology_term(kt, target, 24)
        fit = target < train_end
        kt_f = cliper(p, c, fit_weight(kt[target][fit], p[fit], c[fit], clear[target][fit]))
        kt_f = np.where(np.isfinite(kt_f), kt_f, 1.0)  # nothing observed yet: clear sky
        daylight = clear[target] > 50.0
        train, test = daylight & (target < train_end), daylight & (target >= train_end)
        errors = kt_error_quantiles(kt[target][train], kt_f[train], (0.1, 0.9))
        frame = WeatherFrame(
            times=w.times[target],
            interval_s=3600,
            ghi=kt_f * clear[target],
            dni=np.full(len(target), np.nan),
            dhi=np.full(len(target), np.nan),
            temp_air=w.temp_air[issue],
            wind_speed=w.wind_speed[issue],
            cloud_cover=np.full(len(target), np.nan),
            latitude=w.latitude,
            longitude=w.longitude,
        )
        ours = forecast_pv(site, frame, kt_errors=errors).values[:, :, 0]
        rows += _naive_rows(
            "PV Greensboro TMY3",
            label,
            actual,
            issue[train],
            issue[test],
            h,
            24,
            4600.0,
            np.ones(train.sum(), bool),
            np.ones(test.sum(), bool),
        )
        rows.append(
            _score(
                "PV Greensboro TMY3",
                label,
                "CLIPER clear-sky PVWatts",
                actual[target][test],
                ours[:, test],
                4600.0,
            )
        )
    return _flag(rows)


def run_backtest(*, quick: bool = False) -> list[BacktestRow]:
    """The accuracy table (load and PV, three horizons, ours vs persistence and seasonal naive).

    ``quick`` fits a smaller load model (4,000 samples, 60 trees per quantile) and issues
    forecasts every 6 h instead of every 2 h: for tests and smoke runs, not for the record.
    """
    if quick:
        return backtest_load(stride=12, samples=4000, max_iter=60) + backtest_pv()
    return backtest_load() + backtest_pv()


def format_table(rows: list[BacktestRow]) -> str:
    """A plain-text table for the command line."""
    head = f"{'series':20} {'horizon':10} {'model':26} {'MAE W':>12} {'nMAE':>7} {'pinball W':>11} {'P10-P90':>8}  beats"
    lines = [head, "-" * len(head)]
    for r in rows:
        beats = "" if r.beats_persistence is None else ("yes" if r.beats_persistence else "no")
        lines.append(
            f"{r.series:20} {r.horizon:10} {r.model:26} {r.mae_w:12.0f} {r.nmae:7.3f} {r.pinball_w:11.0f} "
            f"{r.coverage_p10_p90:8.2f}  {beats}"
        )
    return "\n".join(lines)
