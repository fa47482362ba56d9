"""PV output and TMY weather mapping against direct pvlib calls on the bundled TMY3 file."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pvlib
import pytest

from derms.sim.physics import PvArrays
from derms.sim.physics.pv import ETA_INV_NOM
from derms.sim.weather import GAMMA_PDC, ORIENTATIONS, TMY3_FILE, Weather


@pytest.fixture(scope="module")
def tmy() -> pd.DataFrame:
    data, _ = pvlib.iotools.read_tmy3(str(TMY3_FILE), map_variables=True)
    return data


def test_tmy_hour_lands_on_the_same_calendar_hour(weather: Weather, tmy: pd.DataFrame) -> None:
    # TMY row "07/15 13:00" (hour ending 13:00 local standard time, UTC-5) is centred at 12:30 LST.
    row = tmy[(tmy["Date (MM/DD/YYYY)"].str.startswith("07/15/")) & (tmy["Time (HH:MM)"] == "13:00")].iloc[0]
    t = datetime(2026, 7, 15, 17, 30, tzinfo=UTC).timestamp()
    assert weather.temp_air_c(t) == pytest.approx(row["temp_air"])
    assert weather.local_hour(t) == pytest.approx(12.5)


def test_leap_day_repeats_28_february(weather: Weather) -> None:
    feb28 = datetime(2028, 2, 28, 17, 30, tzinfo=UTC).timestamp()
    feb29 = datetime(2028, 2, 29, 17, 30, tzinfo=UTC).timestamp()
    assert weather.temp_air_c(feb29) == weather.temp_air_c(feb28)
    mar1_leap = datetime(2028, 3, 1, 17, 30, tzinfo=UTC).timestamp()
    mar1 = datetime(2026, 3, 1, 17, 30, tzinfo=UTC).timestamp()
    assert weather.temp_air_c(mar1_leap) == weather.temp_air_c(mar1)


def test_between_hours_is_linear(weather: Weather) -> None:
    a = datetime(2026, 7, 15, 17, 30, tzinfo=UTC).timestamp()
    b = datetime(2026, 7, 15, 18, 30, tzinfo=UTC).timestamp()
    mid = datetime(2026, 7, 15, 18, 0, tzinfo=UTC).timestamp()
    assert weather.temp_air_c(mid) == pytest.approx((weather.temp_air_c(a) + weather.temp_air_c(b)) / 2)
    assert np.allclose(weather.dc_per_w(mid), (weather.dc_per_w(a) + weather.dc_per_w(b)) / 2)


def direct_pvwatts_ac(
    weather: Weather, tmy: pd.DataFrame, when: pd.Timestamp, w_dc: float, w_ac: float
) -> float:
    """PVWatts for a south-facing 25° roof, step by step with pvlib's functions."""
    row = tmy.iloc[(when.dayofyear - 1) * 24 + when.hour]  # hour ending when.hour + 1
    times = pd.DatetimeIndex([when])
    loc = weather.location
    solpos = loc.get_solarposition(times, temperature=row["temp_air"])
    dni_extra = pvlib.irradiance.get_extra_radiation(times)
    poa = pvlib.irradiance.get_total_irradiance(
        25.0, 180.0, solpos["apparent_zenith"], solpos["azimuth"], row["dni"], row["ghi"], row["dhi"],
        dni_extra=dni_extra, model="isotropic",
    )  # fmt: skip
    aoi = pvlib.irradiance.aoi(25.0, 180.0, solpos["apparent_zenith"], solpos["azimuth"])
    iam = pvlib.iam.physical(aoi)
    effective = poa["poa_direct"] * iam + poa["poa_diffuse"]
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["close_mount_glass_glass"]
    t_cell = pvlib.temperature.sapm_cell(poa["poa_global"], row["temp_air"], row["wind_speed"], **params)
    dc = pvlib.pvsystem.pvwatts_dc(effective, t_cell, 1.0, GAMMA_PDC)
    dc = dc * (1 - pvlib.pvsystem.pvwatts_losses() / 100)
    pac = pvlib.inverter.pvwatts(dc.iloc[0] * w_dc, w_ac / ETA_INV_NOM, eta_inv_nom=ETA_INV_NOM)
    return float(pac)


@pytest.mark.parametrize(("hour", "w_ac"), [(9, 5_000.0), (12, 5_000.0), (12, 3_000.0), (16, 5_000.0)])
def test_pv_matches_direct_pvlib(weather: Weather, tmy: pd.DataFrame, hour: int, w_ac: float) -> None:
    when = pd.Timestamp(2026, 7, 15, hour, 30, tz=weather.location.tz)
    w_dc = 6_000.0
    expected = direct_pvwatts_ac(weather, tmy, when, w_dc, w_ac)
    pv = PvArrays(w_dc=np.array([w_dc]), w_ac=np.array([w_ac]), orientation=np.array([0], dtype=np.intp))
    got = pv.available_w(weather.dc_per_w(when.timestamp()), np.ones(1))[0]
    assert expected > 0
    assert got == pytest.approx(min(expected, w_ac), rel=1e-9)


def test_pv_zero_at_night_and_scaled_by_clouds(weather: Weather) -> None:
    pv = PvArrays(w_dc=np.full(4, 6_000.0), w_ac=np.full(4, 5_000.0), orientation=np.arange(4, dtype=np.intp))
    night = datetime(2026, 7, 15, 7, 0, tzinfo=UTC).timestamp()
    assert np.all(pv.available_w(weather.dc_per_w(night), np.ones(4)) == 0.0)
    noon = datetime(2026, 7, 15, 17, 0, tzinfo=UTC).timestamp()
    clear = pv.available_w(weather.dc_per_w(noon), np.ones(4))
    cloudy = pv.available_w(weather.dc_per_w(noon), np.full(4, 0.3))
    assert np.all(cloudy < clear)
    assert len(ORIENTATIONS) == 4
