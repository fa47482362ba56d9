"""Weather sources: pvlib's shipped TMY files and the NWS gridpoint adapter."""

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from derms.forecast.nws import NwsFormatError, NwsGridpointForecast, parse_valid_time
from derms.forecast.weather import TmyFileSource, WeatherSource, pvlib_data_file

DATA = Path(__file__).parent / "data"
NWS = DATA / "nws_gridpoint_RAH_40_75.json"  # hand-written from the documented format; see data/README.md
JUNE21 = (datetime(2026, 6, 21, tzinfo=UTC), datetime(2026, 6, 22, tzinfo=UTC))


def test_tmy3_greensboro_is_hour_starting_utc():
    source = TmyFileSource(pvlib_data_file("723170TYA.CSV"))
    assert isinstance(source, WeatherSource)
    w = source.weather(*JUNE21)
    assert len(w.times) == 24 and w.interval_s == 3600
    assert (w.latitude, w.longitude) == (36.1, -79.95)
    # local solar noon is ~17:20 UTC at 80 °W; daylight GHI lies between ~10 and ~23 UTC, none at night
    assert w.ghi[4:9].max() == 0.0 and w.ghi[14:21].min() > 100.0
    assert np.isfinite(w.temp_air).all() and np.nanmax(w.cloud_cover) <= 100
    noon = w.window(datetime(2026, 6, 21, 16, tzinfo=UTC), datetime(2026, 6, 21, 19, tzinfo=UTC))
    assert len(noon.times) == 3 and noon.ghi == pytest.approx(w.ghi[16:19])


def test_tmy2_miami_units_and_year_wrap():
    source = TmyFileSource(pvlib_data_file("12839.tm2"))
    w = source.weather(datetime(2024, 12, 31, 20, tzinfo=UTC), datetime(2025, 1, 1, 4, tzinfo=UTC))
    assert len(w.times) == 8
    assert w.temp_air.min() > 10.0 and w.temp_air.max() < 35.0  # tenths of °C converted
    assert w.wind_speed.max() < 20.0


def test_nws_gridpoint_layers_expand_onto_the_hourly_grid():
    w = NwsGridpointForecast(NWS).weather(*JUNE21)
    assert w.latitude == pytest.approx(36.105) and w.longitude == pytest.approx(-79.945)
    assert w.temp_air[:4] == pytest.approx([26.1] * 4)  # PT4H
    assert w.temp_air[16:21] == pytest.approx([31.1] * 5)  # PT5H
    assert w.wind_speed[0] == pytest.approx(7.4 / 3.6)  # km/h -> m/s
    assert w.cloud_cover[12] == 10 and w.cloud_cover[22] == 90
    # under 90 % cloud GHI keeps 0.35 + 0.65 * 0.1 = 41.5 % of clear sky (Larson et al. 2016)
    assert w.ghi[6] == 0.0 and w.ghi[15] > 600.0
    assert np.nanmax(w.dni) < 1000.0


def test_nws_outside_forecast_is_nan_not_zero():
    w = NwsGridpointForecast(NWS).weather(
        datetime(2026, 6, 22, tzinfo=UTC), datetime(2026, 6, 22, 3, tzinfo=UTC)
    )
    assert np.isnan(w.temp_air).all() and np.isnan(w.ghi).all()


def test_nws_bad_documents_are_refused():
    doc = json.loads(NWS.read_text())
    with pytest.raises(NwsFormatError):
        NwsGridpointForecast({"properties": {}})
    doc["properties"]["temperature"]["uom"] = "wmoUnit:furlong"
    with pytest.raises(NwsFormatError, match="unit"):
        NwsGridpointForecast(doc).weather(*JUNE21)
    with pytest.raises(NwsFormatError):
        parse_valid_time("2026-06-21T00:00:00+00:00/P1Y")
    assert parse_valid_time("2026-06-21T00:00:00-04:00/P1DT6H")[1] == 30 * 3600
