"""Adapter for the US National Weather Service gridpoint forecast data (api.weather.gov).

The NWS API's ``/gridpoints/{wfo}/{x},{y}`` resource is a GeoJSON Feature whose
``properties`` hold one layer per quantity: ``{"uom": "wmoUnit:degC", "values":
[{"validTime": "2026-06-21T12:00:00+00:00/PT3H", "value": 24.4}, ...]}``. Each value
holds for an ISO 8601 interval (start/duration). This module only *parses* a response
that the caller already has (from a file or its own HTTP client); derms fetches nothing.

Irradiance is not forecast by the NWS: GHI is derived from sky cover with the linear
cloud-cover model of Larson et al. (2016), ``GHI = (offset + (1 - offset)(1 - cc/100)) GHI_clear``
with ``offset = 0.35``, on the Ineichen–Perez clear sky, and split into DNI/DHI with
Erbs et al. (1982).

References
----------
.. [1] NWS API web service documentation, https://www.weather.gov/documentation/services-web-api
.. [2] Larson, D. P., Nonnenmacher, L., Coimbra, C. F. M. (2016). Day-ahead forecasting of
   solar power output from photovoltaic plants in the American Southwest. Renewable
   Energy 91, 11-20. doi:10.1016/j.renene.2016.01.039
.. [3] Erbs, D. G., Klein, S. A., Duffie, J. A. (1982). Estimation of the diffuse radiation
   fraction for hourly, daily and monthly-average global radiation. Solar Energy 28(4).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from derms.core.clock import utc
from derms.forecast.weather import WeatherFrame

LARSON_OFFSET = 0.35
"""Fraction of clear-sky GHI left under full overcast in the linear cloud model [-]."""

_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?)?$")
_TO_SI = {
    "wmoUnit:degC": lambda v: v,
    "wmoUnit:degF": lambda v: (v - 32.0) * 5.0 / 9.0,
    "wmoUnit:K": lambda v: v - 273.15,
    "wmoUnit:km_h-1": lambda v: v / 3.6,
    "wmoUnit:m_s-1": lambda v: v,
    "wmoUnit:percent": lambda v: v,
    "wmoUnit:m": lambda v: v,
}


class NwsFormatError(ValueError):
    """The document is not NWS gridpoint forecast data as documented."""


def parse_valid_time(valid_time: str) -> tuple[datetime, int]:
    """Split an NWS ``validTime`` ("2026-06-21T12:00:00+00:00/PT3H") into UTC start and seconds."""
    try:
        start_text, duration = valid_time.split("/")
        start = utc(datetime.fromisoformat(start_text))
    except ValueError as exc:
        raise NwsFormatError(f"bad validTime {valid_time!r}") from exc
    match = _DURATION.match(duration)
    if match is None or not any(match.groupdict().values()):
        raise NwsFormatError(f"unsupported ISO 8601 duration {duration!r} in {valid_time!r}")
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    return start, parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60


def layer_on_grid(layer: dict[str, Any], times: np.ndarray, interval_s: int) -> np.ndarray:
    """Values of one gridpoint layer on a regular UTC grid, in SI units; NaN where not covered."""
    uom = layer.get("uom")
    if uom not in _TO_SI:
        raise NwsFormatError(f"unsupported unit {uom!r}")
    out = np.full(len(times), np.nan)
    step = np.timedelta64(interval_s, "s")
    for item in layer.get("values", []):
        if item.get("value") is None:
            continue
        start, seconds = parse_valid_time(item["validTime"])
        t0 = np.datetime64(start.replace(tzinfo=None), "s")
        covered = (times >= t0) & (times + step <= t0 + np.timedelta64(seconds, "s"))
        out[covered] = _TO_SI[uom](float(item["value"]))
    return out


class NwsGridpointForecast:
    """A weather source over one NWS gridpoint forecast document (already retrieved).

    ``document`` is the parsed JSON (or a path to it). The location is the centroid of the
    grid cell polygon; the forecast is resampled to ``interval_s`` (hourly by default).
    """

    def __init__(self, document: dict[str, Any] | str | Path, interval_s: int = 3600) -> None:
        if not isinstance(document, dict):
            document = json.loads(Path(document).read_text(encoding="utf-8"))
        props = document.get("properties")
        geometry = document.get("geometry") or {}
        if not isinstance(props, dict) or "temperature" not in props or "skyCover" not in props:
            raise NwsFormatError("expected a gridpoint Feature with temperature and skyCover layers")
        coords = geometry.get("coordinates")
        if geometry.get("type") != "Polygon" or not coords:
            raise NwsFormatError("expected the grid cell as a GeoJSON Polygon")
        ring = np.asarray(coords[0], dtype=float)
        self.longitude = float(ring[:-1, 0].mean())
        self.latitude = float(ring[:-1, 1].mean())
        self.altitude = float((props.get("elevation") or {}).get("value") or 0.0)
        self.update_time = utc(datetime.fromisoformat(props["updateTime"])) if "updateTime" in props else None
        self.interval_s = interval_s
        self._props = props

    def weather(self, start: datetime, end: datetime) -> WeatherFrame:
        start, end = utc(start), utc(end)
        times = pd.date_range(
            pd.Timestamp(start).floor(f"{self.interval_s}s"),
            end,
            freq=f"{self.interval_s}s",
            inclusive="left",
        )
        grid = times.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")
        temp = layer_on_grid(self._props["temperature"], grid, self.interval_s)
        cloud = layer_on_grid(self._props["skyCover"], grid, self.interval_s)
        wind_layer = self._props.get("windSpeed")
        wind = layer_on_grid(wind_layer, grid, self.interval_s) if wind_layer else np.full(len(grid), np.nan)
        ghi, dni, dhi = irradiance_from_cloud_cover(
            times, cloud, self.latitude, self.longitude, self.altitude, self.interval_s
        )
        return WeatherFrame(
            times=grid,
            interval_s=self.interval_s,
            ghi=ghi,
            dni=dni,
            dhi=dhi,
            temp_air=temp,
            wind_speed=wind,
            cloud_cover=cloud,
            latitude=self.latitude,
            longitude=self.longitude,
            altitude=self.altitude,
            source="NWS gridpoint forecast",
        )


def irradiance_from_cloud_cover(
    times: pd.DatetimeIndex,
    cloud_cover: np.ndarray,
    latitude: float,
    longitude: float,
    altitude: float,
    interval_s: int,
    offset: float = LARSON_OFFSET,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GHI, DNI, DHI [W/m²] from cloud cover [%] (Larson et al. 2016, Erbs et al. 1982).

    Solar geometry is taken at interval midpoints; NaN cloud cover gives NaN irradiance.
    """
    import pvlib

    mid = times + pd.to_timedelta(interval_s // 2, unit="s")
    location = pvlib.location.Location(latitude, longitude, altitude=altitude)
    clear = location.get_clearsky(mid, model="ineichen")
    ghi = (offset + (1.0 - offset) * (1.0 - cloud_cover / 100.0)) * clear["ghi"].to_numpy()
    zenith = location.get_solarposition(mid)["zenith"].to_numpy()
    split = pvlib.irradiance.erbs(np.nan_to_num(ghi), zenith, mid.dayofyear.to_numpy())
    nan = np.isnan(ghi)
    dni = np.where(nan, np.nan, np.asarray(split["dni"]))
    dhi = np.where(nan, np.nan, np.asarray(split["dhi"]))
    return ghi, dni, dhi
