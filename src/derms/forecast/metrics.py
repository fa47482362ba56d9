"""Forecast accuracy measures; NaN actuals are left out, never counted as zero.

References
----------
.. [1] Hyndman, R. J., Koehler, A. B. (2006). Another look at measures of forecast accuracy.
   Int. J. Forecasting 22(4), 679-688 (MAE, scaled errors).
.. [2] Koenker, R., Bassett, G. (1978). Regression quantiles. Econometrica 46(1) (pinball / check loss).
.. [3] Hong, T. et al. (2016). Probabilistic energy forecasting: GEFCom2014. Int. J. Forecasting
   32(3), 896-913 (average pinball loss over quantile levels as the score).
"""

from __future__ import annotations

import numpy as np


def _valid(actual: np.ndarray, forecast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    actual, forecast = np.broadcast_arrays(np.asarray(actual, float), np.asarray(forecast, float))
    keep = ~(np.isnan(actual) | np.isnan(forecast))
    if not keep.any():
        raise ValueError("no interval has both an actual and a forecast value")
    return actual[keep], forecast[keep]


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute error, in the unit of the inputs."""
    a, f = _valid(actual, forecast)
    return float(np.mean(np.abs(a - f)))


def nmae(actual: np.ndarray, forecast: np.ndarray, scale: float | None = None) -> float:
    """MAE divided by ``scale`` (default: mean absolute actual value) [-].

    For PV pass the installed capacity as ``scale`` (the usual normalisation for solar).
    """
    a, f = _valid(actual, forecast)
    scale = float(np.mean(np.abs(a))) if scale is None else scale
    if scale <= 0:
        raise ValueError("scale must be positive")
    return float(np.mean(np.abs(a - f)) / scale)


def pinball(actual: np.ndarray, forecast: np.ndarray, q: float) -> float:
    """Pinball (quantile) loss at level ``q``: mean of ``max(q (y - f), (q - 1)(y - f))``."""
    a, f = _valid(actual, forecast)
    d = a - f
    return float(np.mean(np.maximum(q * d, (q - 1.0) * d)))


def mean_pinball(actual: np.ndarray, forecasts: np.ndarray, quantiles: tuple[float, ...]) -> float:
    """Pinball loss averaged over quantile levels; ``forecasts`` is ``(Q, ...)``."""
    return float(np.mean([pinball(actual, forecasts[i], q) for i, q in enumerate(quantiles)]))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of valid actuals inside ``[lower, upper]`` [-]."""
    a, lo, hi = np.broadcast_arrays(*(np.asarray(x, float) for x in (actual, lower, upper)))
    keep = ~(np.isnan(a) | np.isnan(lo) | np.isnan(hi))
    if not keep.any():
        raise ValueError("no interval has both an actual value and a band")
    return float(np.mean((a[keep] >= lo[keep]) & (a[keep] <= hi[keep])))
