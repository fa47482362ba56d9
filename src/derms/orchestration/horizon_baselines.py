"""Baselines over a receding horizon: what each DER would do at every step without dispatch.

PV follows *smart persistence* of the clear-sky index (Pedro & Coimbra, "Assessment of
forecasting techniques for solar power production with no exogenous inputs", Solar Energy
86(7), 2012; Yang, "A guideline to solar forecasting research practice", J. Renewable and
Sustainable Energy 11, 2019): the index now, ``k = P(now) / P_cs(now)``, persists and the
output at step ``j`` is ``k * P_cs(step j)``. The array's clear-sky output is its nameplate
scaled by the Haurwitz (1945) clear-sky GHI, ``P_cs = w_max * GHI_cs / 1000 W/m²``
(:func:`derms.forecast.solar.clear_sky_ghi`; the registry holds no array orientation, so the
horizontal clear sky stands for the plane of array), averaged over each step. ``k`` is
clipped to ``[0, KT_MAX]`` (:data:`derms.forecast.pv.KT_MAX`). With the sun too low for a
meaningful index now (zenith above :data:`LOW_SUN_ZENITH_DEG`, night included) the output is
``NIGHT_INDEX * P_cs``: zero until sunrise, then a clear-sky ramp. A PV DER whose site has no
registered latitude/longitude keeps its present output (persistence).

The first step, the one dispatched, keeps the present baseline in every case: the measured
output (or a curtailed DER's pre-command output), against which delivery is measured.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from derms.core.der import DerKind
from derms.fleet.state import KIND_CODES
from derms.forecast.pv import KT_MAX
from derms.forecast.solar import clear_sky_ghi, solar_angles

PV_CODES = np.array([KIND_CODES[DerKind.PV_INVERTER], KIND_CODES[DerKind.UTILITY_PV]], np.int8)
LOW_SUN_ZENITH_DEG = 85.0
"""Above this solar zenith the clear-sky index is not estimated from the present output: near
the horizon the clear-sky model's relative error explodes (clear-sky-index studies commonly
discard zenith angles above 85°, e.g. Yang 2019)."""
NIGHT_INDEX = 0.8
"""Index of the output after sunrise when none could be measured [-]: the clear-sky output
less PVWatts' default system losses, 14 %, and inverter efficiency, 96 % (Dobos, PVWatts
Version 5 Manual, NREL/TP-6A20-62641, 2014), 0.83, rounded down."""
SAMPLE_S = 300.0
"""The clear sky of a step is its mean over samples this far apart [s] (midpoints)."""
STC_IRRADIANCE = 1000.0
"""Irradiance at which a nameplate is rated [W/m²]."""


def pv_smart_persistence(
    p_w: np.ndarray,
    w_max: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
    now: datetime,
    *,
    dt_s: float,
    steps: int,
) -> np.ndarray:
    """Baseline output [W] of PV DERs over ``steps`` steps of ``dt_s`` from ``now``, ``(n, steps)``.

    ``p_w`` is the present baseline output, ``w_max`` the nameplate [W], ``latitude`` and
    ``longitude`` the site's [degrees] (NaN when unknown: persistence). Column 0 is ``p_w``;
    later columns are the smart persistence of the module docstring, at most ``w_max``.
    """
    out = np.repeat(np.asarray(p_w, float)[:, None], steps, axis=1)
    located = np.isfinite(latitude) & np.isfinite(longitude) & (w_max > 0)
    if steps < 2 or not located.any():
        return out
    t0 = np.datetime64(round(now.timestamp() * 1000.0), "ms")
    per_step = max(1, round(dt_s / SAMPLE_S))
    offsets_s = (np.arange(steps * per_step) + 0.5) * dt_s / per_step
    times = np.concatenate([[t0], t0 + (offsets_s * 1000.0).astype("timedelta64[ms]")])
    zenith, _ = solar_angles(times, latitude[located], longitude[located])
    ghi = clear_sky_ghi(zenith)  # (1 + steps * per_step, located)
    cs_now = w_max[located] * ghi[0] / STC_IRRADIANCE
    cs_steps = w_max[located][None, :] * ghi[1:].reshape(steps, per_step, -1).mean(axis=1) / STC_IRRADIANCE
    low_sun = zenith[0] > LOW_SUN_ZENITH_DEG
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.clip(np.maximum(p_w[located], 0.0) / cs_now, 0.0, KT_MAX)
    index = np.where(low_sun, NIGHT_INDEX, index)
    forecast = np.minimum(index[None, :] * cs_steps, w_max[located][None, :])
    rows = np.flatnonzero(located)
    out[rows, 1:] = forecast[1:].T
    return out


def horizon_baselines(
    kind: np.ndarray,
    base: np.ndarray,
    w_max: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
    now: datetime,
    *,
    dt_s: float,
    steps: int,
) -> tuple[np.ndarray, int]:
    """Baseline [W] of every fleet row over the horizon, ``(len(base), steps)``, and the number
    of PV rows without a site location (kept at persistence).

    PV by :func:`pv_smart_persistence`; every other kind by persistence of ``base`` (the
    flexibility model derives an EV's own baseline from its need).
    """
    out = np.repeat(np.asarray(base, float)[:, None], steps, axis=1)
    pv = np.flatnonzero(np.isin(kind, PV_CODES))
    if len(pv):
        w = np.nan_to_num(w_max[pv])
        out[pv] = pv_smart_persistence(
            out[pv, 0], w, latitude[pv], longitude[pv], now, dt_s=dt_s, steps=steps
        )
    unlocated = int((~(np.isfinite(latitude[pv]) & np.isfinite(longitude[pv]))).sum())
    return out, unlocated
