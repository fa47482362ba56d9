"""Naive reference forecasts computed alongside every forecast: persistence and seasonal naive.

For a series ``y`` observed up to index ``i`` and a target ``j = i + h``:

- persistence: ``y[i]``;
- seasonal naive: ``y[j - m k]`` with season ``m`` (one day) and the smallest ``k`` with
  ``m k >= h``, i.e. the same time of day on the most recent day already observed.

Their quantiles add empirical residual quantiles per horizon measured on a training
span (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., §5.2 and §5.5).
"""

from __future__ import annotations

import numpy as np


def persistence(y: np.ndarray, issue: np.ndarray, horizon: int) -> np.ndarray:
    """Point forecasts for targets ``issue + horizon``: the last value seen at ``issue``."""
    return np.asarray(y, float)[issue]


def seasonal_naive(y: np.ndarray, issue: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Point forecasts for targets ``issue + horizon``: same phase of the last fully observed season."""
    k = -(-horizon // season)
    return np.asarray(y, float)[issue + horizon - season * k]


def residual_quantiles(actual: np.ndarray, point: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """Empirical quantiles of ``actual - point`` along the first axis (NaN-aware), one row per level."""
    return np.nanquantile(np.asarray(actual, float) - np.asarray(point, float), quantiles, axis=0)
