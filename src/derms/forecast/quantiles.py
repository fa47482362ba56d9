"""Quantile forecasts as arrays, and their roll-up to feeders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class QuantileForecast:
    """Forecast values [W] at several quantile levels.

    ``values`` is shaped ``(Q, T, N)``: quantile level × interval × series (site or feeder);
    ``times`` are the UTC interval starts (``datetime64[s]``), each ``interval_s`` long.
    Power follows the derms sign convention: positive is injection (PV), negative is
    consumption — except load forecasts, which report demand as a positive number of watts
    (``kind="demand"``).
    """

    times: np.ndarray
    interval_s: int
    quantiles: tuple[float, ...]
    values: np.ndarray
    kind: str = "injection"

    def __post_init__(self) -> None:
        if self.values.ndim != 3 or self.values.shape[:2] != (len(self.quantiles), len(self.times)):
            raise ValueError(
                f"values must be (Q={len(self.quantiles)}, T={len(self.times)}, N); got {self.values.shape}"
            )
        if list(self.quantiles) != sorted(self.quantiles) or not all(0 < q < 1 for q in self.quantiles):
            raise ValueError("quantiles must be increasing levels in (0, 1)")

    def at(self, q: float) -> np.ndarray:
        """The ``(T, N)`` values at quantile level ``q``."""
        try:
            return self.values[self.quantiles.index(q)]
        except ValueError:
            raise KeyError(f"quantile {q} not forecast; have {self.quantiles}") from None

    @property
    def p10(self) -> np.ndarray:
        return self.at(0.1)

    @property
    def p50(self) -> np.ndarray:
        return self.at(0.5)

    @property
    def p90(self) -> np.ndarray:
        return self.at(0.9)

    def roll_up(self, group: np.ndarray, n_groups: int | None = None) -> QuantileForecast:
        """Sum series into groups (feeders) by ``group`` index per series.

        Quantiles are summed, which is exact when the series in a group are comonotone
        (driven by the same weather) and otherwise gives the widest consistent band.
        """
        group = np.asarray(group)
        if len(group) != self.values.shape[2]:
            raise ValueError("one group index per series is required")
        n_groups = int(group.max()) + 1 if n_groups is None else n_groups
        out = np.zeros((*self.values.shape[:2], n_groups))
        np.add.at(out, (slice(None), slice(None), group), self.values)
        return QuantileForecast(self.times, self.interval_s, self.quantiles, out, self.kind)
