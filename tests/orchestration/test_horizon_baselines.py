"""PV baselines over a receding horizon by smart persistence of the clear-sky index (Pedro &
Coimbra 2012), C&I loads' by the shape of their like days (real telemetry store), and the
flexibility model taking a baseline per step.

Expected values come from pvlib's SPA solar position (Reda & Andreas 2004) and pvlib's
Haurwitz clear sky, independent of the module's analytical angles (Spencer 1971; within about
0.3 degrees of SPA, a few per cent of the clear sky when the sun is low)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pvlib
import pytest
from sqlalchemy import Engine

from derms.core.der import DerKind
from derms.orchestration.flexibility import Binding, flexibility
from derms.orchestration.horizon_baselines import (
    LOW_SUN_ZENITH_DEG,
    NIGHT_INDEX,
    horizon_baselines,
    like_day_shapes,
    pv_smart_persistence,
)
from derms.orchestration.inputs import FleetInput, Preferences, kind_code
from tests.orchestration.test_baseline_refresh import (
    STEP,
    TODAY,
    command_window,
    demand,
    prefill,
    weekdays_back,
)

# An equatorial site at the March equinox: the sun rises about 06:00 and sets about 18:00 UTC.
LAT, LON = np.array([0.0]), np.array([0.0])
W_MAX = np.array([5000.0])
DT = 300.0  # one clear-sky sample per step, at its midpoint


def clear_sky_w(at: datetime) -> float:
    """The array's clear-sky output at ``at`` [W]: nameplate x Haurwitz GHI / 1000 W/m²."""
    pos = pvlib.solarposition.get_solarposition(pd.DatetimeIndex([at]), LAT[0], LON[0])
    ghi = pvlib.clearsky.haurwitz(pos["zenith"])["ghi"].iloc[0]  # geometric, as the module
    return float(W_MAX[0] * ghi / 1000.0)


def midpoint(now: datetime, step: int) -> datetime:
    return now + timedelta(seconds=(step + 0.5) * DT)


def test_clear_sky_index_persists_and_output_ends_at_sunset() -> None:
    now = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
    # About half the clear-sky output now (zenith ~45 deg: cos 0.71, Haurwitz ~720 W/m², ~3.6 kW).
    p_now = 0.5 * clear_sky_w(now)
    assert 1700.0 < p_now < 1900.0
    steps = 12 * 11  # 11 h of 5-minute steps: to 20:00, past sunset
    out = pv_smart_persistence(np.array([p_now]), W_MAX, LAT, LON, now, dt_s=DT, steps=steps)
    assert out.shape == (1, steps)
    assert out[0, 0] == p_now  # the dispatched step keeps the measured baseline
    for step in (12, 36, 60, 84, 96):  # 10:05 ... 17:05
        expected = 0.5 * clear_sky_w(midpoint(now, step))
        assert out[0, step] == pytest.approx(expected, rel=0.03)
    noon = 3 * 12 + 6
    assert out[0, noon] > out[0, 12] and out[0, noon] > out[0, 96]  # rises to noon, then falls
    after_sunset = np.arange(steps) > (18.2 - 9.0) * 12
    assert np.all(out[0, after_sunset] == 0.0)


def test_night_output_is_zero_until_sunrise_then_a_default_index() -> None:
    now = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
    steps = 12 * 8  # to 10:00
    out = pv_smart_persistence(np.array([0.0]), W_MAX, LAT, LON, now, dt_s=DT, steps=steps)
    before_sunrise = np.arange(steps) < (5.8 - 2.0) * 12
    assert np.all(out[0, before_sunrise] == 0.0)
    for step in (5 * 12, 7 * 12):  # 07:02, 09:02
        expected = NIGHT_INDEX * clear_sky_w(midpoint(now, step))
        assert out[0, step] == pytest.approx(expected, rel=0.03)


def test_index_is_clipped_when_the_sun_is_low() -> None:
    # 16:30 UTC: zenith ~67 deg (below LOW_SUN_ZENITH_DEG), clear sky ~2 kW; 3 kW measured
    # (cloud-edge enhancement) would be an index of ~1.5, clipped to 1.2.
    now = datetime(2026, 3, 20, 16, 30, tzinfo=UTC)
    cs = clear_sky_w(now)
    assert 1500.0 < cs < 2500.0 and 3000.0 / cs > 1.2
    out = pv_smart_persistence(np.array([3000.0]), W_MAX, LAT, LON, now, dt_s=DT, steps=6)
    for step in range(1, 6):
        assert out[0, step] == pytest.approx(1.2 * clear_sky_w(midpoint(now, step)), rel=0.03)
    # Above LOW_SUN_ZENITH_DEG (just after sunrise) the present output says nothing: the
    # default index applies.
    dawn = datetime(2026, 3, 20, 6, 10, tzinfo=UTC)
    zenith = pvlib.solarposition.get_solarposition(pd.DatetimeIndex([dawn]), 0.0, 0.0)["zenith"].iloc[0]
    assert zenith > LOW_SUN_ZENITH_DEG
    early = pv_smart_persistence(np.array([3000.0]), W_MAX, LAT, LON, dawn, dt_s=DT, steps=12)
    assert early[0, 0] == 3000.0
    assert early[0, 11] == pytest.approx(NIGHT_INDEX * clear_sky_w(midpoint(dawn, 11)), rel=0.03)


def test_sites_without_a_location_keep_persistence() -> None:
    now = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)
    pv, battery = kind_code(DerKind.PV_INVERTER), kind_code(DerKind.HOME_BATTERY)
    kind = np.array([pv, pv, battery], np.int8)
    base = np.array([2000.0, 2000.0, -1500.0])
    lat, lon = np.array([0.0, np.nan, 0.0]), np.array([0.0, np.nan, 0.0])
    out, unlocated = horizon_baselines(
        kind, base, np.array([5000.0, 5000.0, 5000.0]), lat, lon, now, dt_s=900.0, steps=8
    )
    assert unlocated == 1
    assert np.all(out[1] == 2000.0) and np.all(out[2] == -1500.0)  # no location; not PV
    assert out[0, 0] == 2000.0 and np.all(np.diff(out[0, 1:]) < 0.0)  # afternoon: falling


def pv_fleet(**columns: object) -> FleetInput:
    return FleetInput.build(
        ["pv-1", "pv-2"], kind=kind_code(DerKind.PV_INVERTER), p_w=3000.0, w_max=5000.0, **columns
    )


def test_flexibility_takes_a_baseline_per_step() -> None:
    ahead = np.array([[3000.0, 2000.0, 500.0, 0.0], [np.nan, np.nan, np.nan, np.nan]])
    f = flexibility(pv_fleet(p_w_steps=ahead), Preferences.build(2, 4), steps=4)
    assert f.base[0].tolist() == [3000.0, 2000.0, 500.0, 0.0]
    assert f.p_hi[0].tolist() == [3000.0, 2000.0, 500.0, 0.0]  # curtailment room: what is available
    assert np.all(f.p_lo == 0.0) and np.all(f.hi_binding == Binding.PV_AVAILABLE)
    assert f.base[1].tolist() == [3000.0] * 4  # NaN: persistence
    plain = flexibility(pv_fleet(), Preferences.build(2, 4), steps=4)
    same = flexibility(pv_fleet(p_w_steps=np.full((2, 4), np.nan)), Preferences.build(2, 4), steps=4)
    for name in ("base", "p_lo", "p_hi", "lo_binding", "hi_binding"):
        assert np.array_equal(getattr(plain, name), getattr(same, name))
    assert np.all(plain.p_hi == 3000.0)
    with pytest.raises(ValueError, match="p_w_steps has 4 steps"):
        flexibility(pv_fleet(p_w_steps=ahead), Preferences.build(2, 6), steps=6)
    with pytest.raises(ValueError, match="p_w_steps must have shape"):
        pv_fleet(p_w_steps=np.zeros(2))


def like_day_demand(der: int, like_days: list[int], slot: int) -> float:
    """Mean demand of the like days' interval ``slot`` (two samples each) [W]."""
    return float(np.mean([(demand(der, d, slot, 0) + demand(der, d, slot, 1)) / 2 for d in like_days]))


def test_like_day_shape_of_load_baselines(db_engine: Engine) -> None:
    # A real telemetry store (SQLite, PostgreSQL) with an afternoon-peak profile per day.
    prefill(db_engine, {0: 14, 1: 3})
    command_window(db_engine, 0, 1, 18.0, 19.0)  # yesterday's 18:00-19:00 commanded: no like day
    loads = {"load-0": 0, "load-1": 1}
    now = TODAY + timedelta(hours=18, minutes=7)  # interval 72 of 96
    got = like_day_shapes(db_engine, loads, now, dt_s=STEP, steps=8)
    assert set(got) == {"load-0"}  # DER 1: 3 days of history, fewer than CAISO's 5 like days
    like = weekdays_back(14, {1})
    assert len(like) == 9
    expected = [like_day_demand(0, like, 72 + j) / like_day_demand(0, like, 72) for j in range(8)]
    assert got["load-0"] == pytest.approx(expected, rel=1e-9)
    assert got["load-0"][0] == 1.0 and got["load-0"][7] < 0.97  # the evening's fall in demand
    # Near UTC midnight the like-day profile ends with today; the last factor persists.
    # Yesterday's command ended at 19:00: a like day for these intervals.
    late = TODAY + timedelta(hours=23, minutes=1)  # interval 92: four intervals left today
    tail = like_day_shapes(db_engine, loads, late, dt_s=STEP, steps=8)["load-0"]
    like = weekdays_back(14)
    expected = [like_day_demand(0, like, 92 + j) / like_day_demand(0, like, 92) for j in range(4)]
    assert tail[:4] == pytest.approx(expected, rel=1e-9)
    assert np.all(tail[4:] == tail[3])
