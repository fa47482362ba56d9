"""Clear-sky-index forecasts from the site's own history, for when no weather forecast exists.

CLIPER — climatology and persistence combined: ``kt_f = w p + (1 - w) c`` where

- ``p`` is persistence of the clear-sky index: the index at the issue hour (smart
  persistence, Pedro & Coimbra 2012) for horizons under a day, the mean index over the
  24 h before issue for a day ahead or more (or when the sun is down at issue);
- ``c`` is climatology known at issue time: the median index at the target's hour of day
  over every earlier day observed (the median, because MAE is the score);
- ``w`` is the convex weight. For squared error, with persistence and climatology of equal
  mean and variance, the optimum is the lag correlation between persistence and the target
  (Murphy 1992; Yang 2019); :func:`fit_weight` instead picks the weight with the least MAE
  on a training span, since MAE is the score.

Day-ahead, where persistence alone has little skill (on the Greensboro TMY3 the correlation
of daily mean indices one day apart is 0.33, of the 24 h mean with the next day's hourly
index 0.12), the fitted weight leans on climatology (0.2) and still uses the day before.

References
----------
.. [1] Yang, D. (2019). Making reference solar forecasts with climatology, persistence, and
   their optimal convex combination. Solar Energy 193, 981-985.
.. [2] Murphy, A. H. (1992). Climatology, persistence, and their linear combination as
   standards of reference in skill scores. Weather and Forecasting 7(4), 692-698.
.. [3] Pedro, H. T. C., Coimbra, C. F. M. (2012). Assessment of forecasting techniques for
   solar power production with no exogenous inputs. Solar Energy 86(7), 2017-2028.
"""

from __future__ import annotations

import warnings

import numpy as np


def persistence_term(kt: np.ndarray, issue: np.ndarray, horizon: int, per_day: int) -> np.ndarray:
    """``p`` for targets ``issue + horizon`` of an hourly-or-finer clear-sky-index series.

    NaN (sun down) entries of ``kt`` are skipped; NaN where nothing was observed.
    """
    kt = np.asarray(kt, float)
    issue = np.asarray(issue)
    if np.any(issue < per_day - 1):
        raise ValueError(f"issue indices need {per_day} earlier values")
    window = kt[issue[:, None] - np.arange(per_day)[None, :]]
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):  # all-night windows
        day_mean = np.nanmean(window, axis=1)
    if horizon >= per_day:
        return day_mean
    now = kt[issue]
    return np.where(np.isfinite(now), now, day_mean)


def climatology_term(
    kt: np.ndarray, target: np.ndarray, per_day: int, max_days: int | None = None
) -> np.ndarray:
    """``c``: median index at each target's position in the day over the days before the target's day.

    ``max_days`` limits the look-back (all earlier days when ``None``).
    """
    kt = np.asarray(kt, float)
    target = np.asarray(target)
    n_days = len(kt) // per_day
    by_day = kt[: n_days * per_day].reshape(n_days, per_day)
    day, phase = target // per_day, target % per_day
    out = np.full(len(target), np.nan)
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
        for d in np.unique(day):
            first = 0 if max_days is None else max(0, d - max_days)
            if d > first:
                rows = day == d
                out[rows] = np.nanmedian(by_day[first:d], axis=0)[phase[rows]]
    return out


def fit_weight(
    kt_actual: np.ndarray,
    persistence: np.ndarray,
    climatology: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """The weight in ``[0, 1]`` (steps of 0.05) with the least training MAE of the blend.

    ``weights`` (e.g. clear-sky irradiance) make the error count like power rather than
    index. Yang's (2019) closed form, the lag correlation, is the squared-error optimum;
    MAE is the score here, and for one-hour smart persistence the two differ.
    """
    a, p, c = (np.asarray(x, float) for x in (kt_actual, persistence, climatology))
    wts = np.ones_like(a) if weights is None else np.asarray(weights, float)
    keep = np.isfinite(a) & np.isfinite(p) & np.isfinite(c) & np.isfinite(wts)
    if keep.sum() < 50:
        raise ValueError(f"need at least 50 paired clear-sky indices, got {int(keep.sum())}")
    a, p, c, wts = a[keep], p[keep], c[keep], wts[keep]
    grid = np.linspace(0.0, 1.0, 21)
    loss = [float(np.sum(wts * np.abs(a - (g * p + (1.0 - g) * c)))) for g in grid]
    return float(grid[int(np.argmin(loss))])


def cliper(persistence: np.ndarray, climatology: np.ndarray, weight: float | np.ndarray) -> np.ndarray:
    """``w p + (1 - w) c`` (``weight`` broadcasts); where one term is missing the other is used alone."""
    w = np.asarray(weight, float)
    if np.any((w < 0.0) | (w > 1.0)):
        raise ValueError("weight must be in [0, 1]")
    p, c = np.asarray(persistence, float), np.asarray(climatology, float)
    blend = w * p + (1.0 - w) * c
    return np.where(np.isfinite(p) & np.isfinite(c), blend, np.where(np.isfinite(p), p, c))
