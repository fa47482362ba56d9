"""Flexibility forecast: up/down capacity per feeder and fleet over the horizon, and what
an aggregator can safely offer.

Input is columnar, one row per DER, with the kind codes and feeder positions of
``derms.fleet.FleetState`` (:class:`FlexFleet`). Per DER and interval a device model gives
the capacity it could hold for ``duration_h`` (upward = more injection / less load,
downward = less injection / more load):

- storage: ``up = min(w_max, E_avail / d) - p``, ``down = min(w_max_consume, E_room / d) + p``
  with ``E_avail = (soc - soc_min) wh_max sqrt(eta)``, ``E_room = (soc_max - soc) wh_max / sqrt(eta)``;
- generation: ``up = 0`` (no headroom assumed), ``down = p`` (curtail the forecast output);
- loads: ``up = -p`` (shed the expected consumption), ``down = w_max_consume + p``;

where ``p`` is the DER's baseline net power (forecast, positive = injection). Each DER then
delivers with probability ``r`` — the posterior mean of a Beta(1, 1) prior updated with its
history of events called and delivered (Laplace's rule of succession), 0 when not enrolled
or not available. Feeder and fleet capacity are sums of independent Bernoulli-weighted
terms: mean ``Σ r c`` and variance ``Σ r (1 - r) c²``; the quantile offered at confidence
``α`` uses the normal approximation (Lyapunov central limit theorem), ``μ - z_α σ``,
never below 0.

With a capacity price ``π`` per W and an under-delivery penalty ``λ`` per W short, the
expected-profit maximising offer is the newsvendor quantile ``F⁻¹(π / λ)`` (Arrow, Harris &
Marschak 1951), i.e. confidence ``1 - π / λ``: see :meth:`FlexibilityForecast.penalty_optimal_offer`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from derms.core.der import DerKind

KINDS: tuple[DerKind, ...] = tuple(DerKind)
"""Kind codes are positions in this tuple, as in ``derms.fleet.KIND_CODES``."""
_STORAGE = np.array([i for i, k in enumerate(KINDS) if k.is_storage])
_GENERATION = np.array([i for i, k in enumerate(KINDS) if k.is_generation])
_LOAD = np.array([i for i, k in enumerate(KINDS) if k.is_load])


@dataclass(frozen=True, slots=True, eq=False)
class FlexFleet:
    """One row per DER. Powers [W], energies [Wh], ``soc`` as a fraction of ``wh_max``.

    ``baseline_w`` is ``(N, T)``: each DER's expected net power over the horizon without
    dispatch (PV forecast, minus the load forecast, 0 for idle storage).
    ``events_called`` / ``events_delivered`` count the DER's past dispatches and those it
    delivered in full (from M&V).
    """

    kind: np.ndarray
    feeder: np.ndarray
    w_max: np.ndarray
    w_max_consume: np.ndarray
    wh_max: np.ndarray
    soc: np.ndarray
    enrolled: np.ndarray
    available: np.ndarray
    baseline_w: np.ndarray
    events_called: np.ndarray
    events_delivered: np.ndarray
    round_trip_efficiency: float = 0.9
    soc_min: float = 0.1
    soc_max: float = 0.95

    def __post_init__(self) -> None:
        n = len(self.kind)
        errors = [
            f"{name} has shape {np.shape(getattr(self, name))}, expected ({n},)"
            for name in (
                "feeder",
                "w_max",
                "w_max_consume",
                "wh_max",
                "soc",
                "enrolled",
                "available",
                "events_called",
                "events_delivered",
            )
            if np.shape(getattr(self, name)) != (n,)
        ]
        if np.ndim(self.baseline_w) != 2 or np.shape(self.baseline_w)[0] != n:
            errors.append(f"baseline_w must be (N={n}, T)")
        if np.any(np.asarray(self.events_delivered) > np.asarray(self.events_called)):
            errors.append("events_delivered exceeds events_called")
        if np.any((np.asarray(self.kind) < 0) | (np.asarray(self.kind) >= len(KINDS))):
            errors.append("unknown kind code")
        if errors:
            raise ValueError("; ".join(errors))

    def __len__(self) -> int:
        return len(self.kind)

    def reliability(self) -> np.ndarray:
        """Probability each DER delivers: Beta(1, 1) posterior mean, 0 if not enrolled/available."""
        r = (np.asarray(self.events_delivered) + 1.0) / (np.asarray(self.events_called) + 2.0)
        return np.where(np.asarray(self.enrolled) & np.asarray(self.available), r, 0.0)


def device_capacity(fleet: FlexFleet, duration_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Upward and downward capacity [W] per DER and interval, ``(N, T)``, held for ``duration_h``."""
    if duration_h <= 0:
        raise ValueError("duration_h must be positive")
    p = np.nan_to_num(np.asarray(fleet.baseline_w, float))
    kind = np.asarray(fleet.kind)[:, None]
    w_max = np.asarray(fleet.w_max, float)[:, None]
    w_cons = np.asarray(fleet.w_max_consume, float)[:, None]
    soc = np.nan_to_num(np.asarray(fleet.soc, float), nan=0.5)[:, None]
    eta = np.sqrt(fleet.round_trip_efficiency)
    wh = np.asarray(fleet.wh_max, float)[:, None]
    e_avail = np.clip(soc - fleet.soc_min, 0, None) * wh * eta
    e_room = np.clip(fleet.soc_max - soc, 0, None) * wh / eta
    storage_up = np.minimum(w_max, e_avail / duration_h) - p
    storage_down = np.minimum(w_cons, e_room / duration_h) + p
    is_storage, is_gen, is_load = (np.isin(kind, codes) for codes in (_STORAGE, _GENERATION, _LOAD))
    up = np.select([is_storage, is_gen, is_load], [storage_up, 0.0 * p, -p], 0.0)
    down = np.select([is_storage, is_gen, is_load], [storage_down, p, w_cons + p], 0.0)
    return np.clip(up, 0.0, None), np.clip(down, 0.0, None)


@dataclass(frozen=True, slots=True, eq=False)
class FlexibilityForecast:
    """Expected capacity and its spread per feeder, ``(F, T)`` arrays [W].

    Row ``F - 1`` collects DERs with no feeder (feeder index −1) when ``unmapped`` is True.
    """

    up_mean_w: np.ndarray
    up_var_w2: np.ndarray
    down_mean_w: np.ndarray
    down_var_w2: np.ndarray
    up_max_w: np.ndarray
    down_max_w: np.ndarray

    def fleet(self) -> FlexibilityForecast:
        """The whole fleet as one row (independent DERs: means and variances add)."""
        return FlexibilityForecast(
            *(
                a.sum(axis=0, keepdims=True)
                for a in (
                    self.up_mean_w,
                    self.up_var_w2,
                    self.down_mean_w,
                    self.down_var_w2,
                    self.up_max_w,
                    self.down_max_w,
                )
            )
        )

    def offer(self, confidence: float, direction: str = "up") -> np.ndarray:
        """Capacity [W] deliverable with probability ``confidence``: ``max(0, μ - z σ)``, ``(F, T)``."""
        if not 0.0 < confidence < 1.0:
            raise ValueError("confidence must be in (0, 1)")
        mean, var, cap = self._direction(direction)
        return np.clip(mean - norm.ppf(confidence) * np.sqrt(var), 0.0, cap)

    def penalty_optimal_offer(self, price: float, penalty: float, direction: str = "up") -> np.ndarray:
        """Offer maximising ``price·q − penalty·E[(q − D)⁺]``: the ``price/penalty`` quantile of D."""
        if price <= 0 or penalty <= 0:
            raise ValueError("price and penalty must be positive")
        if price >= penalty:  # shortfall costs less than the offer earns: offer everything
            return self._direction(direction)[2].copy()
        return self.offer(1.0 - price / penalty, direction)

    def _direction(self, direction: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if direction == "up":
            return self.up_mean_w, self.up_var_w2, self.up_max_w
        if direction == "down":
            return self.down_mean_w, self.down_var_w2, self.down_max_w
        raise ValueError("direction must be 'up' or 'down'")


def forecast_flexibility(fleet: FlexFleet, n_feeders: int, *, duration_h: float = 1.0) -> FlexibilityForecast:
    """Reliability-weighted up/down capacity per feeder over the baseline's horizon.

    Returns ``(n_feeders + 1, T)`` arrays; the last row holds DERs without a feeder.
    """
    up, down = device_capacity(fleet, duration_h)
    r = fleet.reliability()[:, None]
    feeder = np.asarray(fleet.feeder)
    if np.any(feeder >= n_feeders):
        raise ValueError("feeder index beyond n_feeders")
    slot = np.where(feeder >= 0, feeder, n_feeders)
    n_t = up.shape[1]

    def by_feeder(values: np.ndarray) -> np.ndarray:
        out = np.zeros((n_feeders + 1, n_t))
        np.add.at(out, slot, values)
        return out

    return FlexibilityForecast(
        up_mean_w=by_feeder(r * up),
        up_var_w2=by_feeder(r * (1 - r) * up**2),
        down_mean_w=by_feeder(r * down),
        down_var_w2=by_feeder(r * (1 - r) * down**2),
        up_max_w=by_feeder((r > 0) * up),
        down_max_w=by_feeder((r > 0) * down),
    )
