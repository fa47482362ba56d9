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

C&I loads with telemetry history follow the shape of their like-day profile
(:func:`like_day_shapes`, the "X of Y like days" selection of
:func:`derms.programs.baselines.like_day_baseline`, default CAISO 10-in-10): the present
baseline times the like days' mean demand in each step over their mean demand in the present
interval; the others persist.

The first step, the one dispatched, keeps the present baseline in every case: the measured
output (or a curtailed DER's pre-command output), against which delivery is measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine

from derms.core.der import DerKind
from derms.fleet.state import KIND_CODES
from derms.forecast.pv import KT_MAX
from derms.forecast.solar import clear_sky_ghi, solar_angles
from derms.orchestration.baseline_refresh import DAY_S, blank_commanded, interval_means
from derms.programs.baselines import (
    CAISO_10_IN_10,
    Adjustment,
    LikeDayRule,
    like_day_baseline,
    with_overrides,
)

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


def like_day_shapes(
    engine: Engine,
    loads: Mapping[str, int],
    now: datetime,
    *,
    dt_s: float,
    steps: int,
    rule: LikeDayRule = CAISO_10_IN_10,
) -> dict[str, np.ndarray]:
    """Shape of each load's baseline over the horizon, ``(steps,)`` factors on its present
    baseline (1 in the first step), for the loads (DER id to registry row) with enough like days.

    The like days are ``rule``'s (unadjusted: the present baseline is the level) among the
    ``rule.lookback_days`` UTC calendar days before today; intervals in which a command of the
    load was in force are missing data (:mod:`derms.orchestration.baseline_refresh`). Step ``j``
    is the like days' mean demand in the interval ``j`` after the present one over their mean
    demand in the present one; past today's end (UTC midnight) the last factor persists. A
    load with fewer than ``min_days`` clean like days, or no demand in the present interval of
    its like days, is left out (persistence).
    """
    step = int(dt_s)
    if step != dt_s or DAY_S % step or (DAY_S // step) % 24:
        raise ValueError("dt_s must divide a day into a multiple of 24 intervals")
    k = DAY_S // step
    today = datetime.fromtimestamp(now.timestamp() // DAY_S * DAY_S, UTC)
    slot_now = int((now - today).total_seconds()) // step
    end = min(slot_now + steps, k)
    if steps < 2 or end - slot_now < 2 or not loads:
        return {}
    first = today - timedelta(days=rule.lookback_days)
    n_days = rule.lookback_days + 1  # the look-back, then today (no data needed: no adjustment)
    row = {der_id: i for i, der_id in enumerate(loads)}
    by_idx = {idx: row[der_id] for der_id, idx in loads.items()}
    load = np.full((len(loads), n_days * k), np.nan)  # demand [W]: -P
    with engine.connect() as conn:
        for der_idx, at, p_w in interval_means(conn, list(by_idx), first, today, (slot_now, end), step):
            load[by_idx[der_idx], at] = -p_w
        blank_commanded(conn, load, row, first, step)
    shape_rule = with_overrides(rule, adjustment=Adjustment.NONE, adjustment_hours=0.0)
    days = np.arange(
        np.datetime64(first.date(), "D"), np.datetime64(today.date(), "D") + np.timedelta64(1, "D")
    )
    out = {}
    for der_id, i in row.items():
        result = like_day_baseline(load[i].reshape(n_days, k), days, n_days - 1, slot_now, end, shape_rule)
        profile = result.unadjusted[slot_now:end]
        if not np.all(np.isfinite(profile)) or profile[0] <= 0.0:
            continue
        factors = np.full(steps, profile[-1] / profile[0])
        factors[: end - slot_now] = profile / profile[0]
        out[der_id] = factors
    return out
