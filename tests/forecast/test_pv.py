"""PV forecasts for many sites, with quantiles and feeder roll-up."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
import pytest

from derms.forecast import pv
from derms.forecast.nws import NwsGridpointForecast
from derms.forecast.pv import PvSites, forecast_pv, pvwatts_ac
from derms.forecast.solar import clear_sky_ghi, day_of_year, solar_angles
from derms.forecast.weather import TmyFileSource, pvlib_data_file

NWS = Path(__file__).parent / "data" / "nws_gridpoint_RAH_40_75.json"
JUNE21 = (datetime(2026, 6, 21, tzinfo=UTC), datetime(2026, 6, 22, tzinfo=UTC))


def sites(n: int = 3) -> PvSites:
    return PvSites(
        latitude=np.full(n, 36.1),
        longitude=np.full(n, -79.95),
        surface_tilt=np.full(n, 25.0),
        surface_azimuth=np.linspace(150, 210, n),
        pdc0_w=np.full(n, 5000.0),
        pac0_w=np.full(n, 4600.0),
        feeder=np.arange(n) % 2,
    )


def test_vectorised_solar_position_matches_pvlib_spa():
    times = pd.date_range("2026-01-01", "2027-01-01", freq="h", tz="UTC", inclusive="left")
    zen, azi = solar_angles(times.tz_localize(None).to_numpy(), np.array([36.1]), np.array([-79.95]))
    spa = pvlib.solarposition.get_solarposition(times, 36.1, -79.95)
    day = zen[:, 0] < 85
    assert np.abs(zen[:, 0] - spa["zenith"].to_numpy()).max() < 1.0
    assert np.abs((azi[day, 0] - spa["azimuth"].to_numpy()[day] + 180) % 360 - 180).max() < 1.0
    assert clear_sky_ghi(np.array([0.0, 60.0, 95.0])) == pytest.approx(
        [1098 * np.exp(-0.057), 549 * np.exp(-0.114), 0]
    )


def test_pvwatts_chain_matches_pvlib_modelchain_on_tmy():
    w = TmyFileSource(pvlib_data_file("723170TYA.CSV")).weather(*JUNE21)
    s = sites(1)
    ours = pvwatts_ac(s, w.times, w.ghi[:, None], w.temp_air[:, None], w.wind_speed[:, None], 3600)[:, 0]
    assert ours.max() <= 4600.0 and ours[4:9].max() == 0.0
    # energy of the day within 10 % of a pvlib PVWatts ModelChain fed the same GHI (solar position via SPA)
    loc = pvlib.location.Location(36.1, -79.95)
    system = pvlib.pvsystem.PVSystem(
        surface_tilt=25,
        surface_azimuth=150,
        module_parameters={"pdc0": 5000, "gamma_pdc": -0.004},
        inverter_parameters={"pdc0": 4600 / 0.96},
        temperature_model_parameters=pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][
            "open_rack_glass_polymer"
        ],
    )
    mc = pvlib.modelchain.ModelChain(
        system, loc, aoi_model="no_loss", spectral_model="no_loss", transposition_model="isotropic"
    )
    idx = pd.DatetimeIndex(w.times).tz_localize("UTC") + pd.Timedelta(minutes=30)
    zen = loc.get_solarposition(idx)["zenith"]
    split = pvlib.irradiance.erbs(pd.Series(w.ghi, idx), zen, idx)
    mc.run_model(
        pd.DataFrame(
            {
                "ghi": w.ghi,
                "dni": split["dni"],
                "dhi": split["dhi"],
                "temp_air": w.temp_air,
                "wind_speed": w.wind_speed,
            },
            index=idx,
        )
    )
    assert ours.sum() == pytest.approx(mc.results.ac.clip(lower=0).sum(), rel=0.10)


def test_forecast_pv_quantiles_are_ordered_and_roll_up_to_feeders():
    w = NwsGridpointForecast(NWS).weather(*JUNE21)
    f = forecast_pv(sites(3), w)
    assert f.values.shape == (3, 24, 3)
    assert (f.p10 <= f.p50 + 1e-9).all() and (f.p50 <= f.p90 + 1e-9).all()
    assert f.p90[15:18].max() > f.p50[15:18].max() > f.p10[15:18].max() >= 0
    feeders = f.roll_up(sites(3).feeder)
    assert feeders.values.shape == (3, 24, 2)
    assert feeders.p50[:, 0] == pytest.approx(f.p50[:, 0] + f.p50[:, 2])


def test_missing_irradiance_falls_back_to_clear_sky():
    w = NwsGridpointForecast(NWS).weather(
        datetime(2026, 6, 22, tzinfo=UTC), datetime(2026, 6, 23, tzinfo=UTC)
    )
    assert np.isnan(w.ghi).all()  # beyond the document
    f = forecast_pv(sites(1), w)
    assert f.p50.max() > 3000.0  # a clear June day at 5 kWp


def test_weather_index_and_bad_input():
    w = NwsGridpointForecast(NWS).weather(*JUNE21)
    s = sites(2)
    with pytest.raises(ValueError, match="rows"):
        PvSites(np.zeros(2), np.zeros(3), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    bad = PvSites(
        s.latitude,
        s.longitude,
        s.surface_tilt,
        s.surface_azimuth,
        s.pdc0_w,
        s.pac0_w,
        weather_index=np.array([0, 1]),
    )
    with pytest.raises(ValueError, match="weather_index"):
        forecast_pv(bad, w)
    assert forecast_pv(bad, [w, w]).values.shape == (3, 24, 2)
    with pytest.raises(ValueError, match="quantiles"):
        forecast_pv(s, w, quantiles=(0.3, 0.5), kt_errors={0.1: -0.3})


def _chain_on_every_element(s: PvSites, times: np.ndarray, ghi, temp, wind, interval_s: int) -> np.ndarray:
    """The PVWatts chain evaluated on all ``(T, N)`` elements, night included — how
    ``pvwatts_ac`` computed before it skipped the elements without irradiance."""
    mid = times.astype("datetime64[s]") + np.timedelta64(interval_s // 2, "s")
    zen, azi = solar_angles(mid, s.latitude, s.longitude)
    doy = np.broadcast_to(day_of_year(mid)[:, None], zen.shape)
    ghi = np.broadcast_to(ghi, zen.shape)
    split = pvlib.irradiance.erbs(ghi, zen, doy)
    poa = pvlib.irradiance.get_total_irradiance(
        s.surface_tilt[None, :], s.surface_azimuth[None, :], zen, azi, split["dni"], ghi, split["dhi"]
    )["poa_global"]
    poa = np.nan_to_num(np.asarray(poa), nan=0.0)
    cell = pvlib.temperature.sapm_cell(
        poa, temp, wind, **pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    )
    pdc = pvlib.pvsystem.pvwatts_dc(poa, cell, s.pdc0_w[None, :], s.gamma_pdc)
    with np.errstate(divide="ignore", over="ignore"):
        pac = pvlib.inverter.pvwatts(pdc, np.where(s.pac0_w > 0, s.pac0_w / 0.96, 1.0)[None, :])
    return np.clip(np.nan_to_num(np.asarray(pac)), 0.0, s.pac0_w[None, :])


def test_chain_on_lit_elements_only_gives_the_same_power_all_year():
    """A TMY year (twilight hours with GHI > 0 at a zenith past 90°, nights at 0) with a few
    readings knocked out (NaN) and a slightly negative night reading, as sensors give."""
    w = TmyFileSource(pvlib_data_file("723170TYA.CSV")).weather(
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )
    s = sites(3)
    ghi = w.ghi.copy()
    ghi[[100, 4000, 4001]] = np.nan
    ghi[2] = -1.5
    args = (ghi[:, None], w.temp_air[:, None], w.wind_speed[:, None], 3600)
    ours = pvwatts_ac(s, w.times, *args)
    ref = _chain_on_every_element(s, w.times, *args)
    assert (ours > 0).sum() > 3 * 4000  # daylight, all three sites
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_blocks_of_sites_change_nothing(monkeypatch):
    """Blocks of 2 sites (instead of ~2,700 for 96 intervals) give the same forecast."""
    w = NwsGridpointForecast(NWS).weather(*JUNE21)
    s = PvSites(
        np.linspace(35.5, 36.5, 7),
        np.full(7, -79.95),
        np.linspace(10, 35, 7),
        np.linspace(120, 240, 7),
        np.full(7, 5000.0),
        np.full(7, 4600.0),
    )
    whole = forecast_pv(s, w).values
    monkeypatch.setattr(pv, "BLOCK_ELEMENTS", 2 * len(w.times))
    assert len(pv.site_blocks(7, len(w.times))) == 4
    np.testing.assert_array_equal(forecast_pv(s, w).values, whole)
