"""Weather sources: one interface, a file source over pvlib's shipped TMY files.

A :class:`WeatherFrame` is a set of aligned arrays on a regular UTC time grid. Irradiance
follows pvlib's glossary (``ghi``, ``dni``, ``dhi`` [W/m²], ``temp_air`` [°C],
``wind_speed`` [m/s]); each value is the mean over the interval that *starts* at
``times[i]`` and lasts ``interval_s`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from derms.core.clock import utc

FloatArray = np.ndarray
"""1-D float64 array, one value per interval."""


@dataclass(frozen=True, slots=True)
class WeatherFrame:
    """Weather on a regular UTC grid for one location.

    ``times`` are interval starts as ``datetime64[s]`` in UTC; every array has the same length.
    ``cloud_cover`` [%] is NaN where the source does not give it.
    """

    times: np.ndarray
    interval_s: int
    ghi: FloatArray
    dni: FloatArray
    dhi: FloatArray
    temp_air: FloatArray
    wind_speed: FloatArray
    cloud_cover: FloatArray
    latitude: float
    longitude: float
    altitude: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.times)
        bad = [
            name
            for name in ("ghi", "dni", "dhi", "temp_air", "wind_speed", "cloud_cover")
            if len(getattr(self, name)) != n
        ]
        if bad:
            raise ValueError(f"arrays {bad} do not match {n} timestamps")
        if self.interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if n > 1 and not np.all(np.diff(self.times).astype("timedelta64[s]").astype(int) == self.interval_s):
            raise ValueError("times must be a regular grid with step interval_s")

    def window(self, start: datetime, end: datetime) -> WeatherFrame:
        """The intervals starting in ``[start, end)``."""
        t0 = np.datetime64(utc(start).replace(tzinfo=None), "s")
        t1 = np.datetime64(utc(end).replace(tzinfo=None), "s")
        keep = (self.times >= t0) & (self.times < t1)
        return WeatherFrame(
            times=self.times[keep],
            interval_s=self.interval_s,
            ghi=self.ghi[keep],
            dni=self.dni[keep],
            dhi=self.dhi[keep],
            temp_air=self.temp_air[keep],
            wind_speed=self.wind_speed[keep],
            cloud_cover=self.cloud_cover[keep],
            latitude=self.latitude,
            longitude=self.longitude,
            altitude=self.altitude,
            source=self.source,
        )


@runtime_checkable
class WeatherSource(Protocol):
    """Anything that yields weather for a location and period (files, forecast services)."""

    def weather(self, start: datetime, end: datetime) -> WeatherFrame:
        """Weather for intervals starting in ``[start, end)`` (UTC-aware bounds)."""
        ...


def pvlib_data_file(name: str) -> Path:
    """Path of a data file shipped inside the installed pvlib package (e.g. ``723170TYA.CSV``)."""
    import pvlib

    path = Path(pvlib.__file__).parent / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not shipped with pvlib {pvlib.__version__}")
    return path


class TmyFileSource:
    """Typical-meteorological-year weather read from a TMY3 CSV or TMY2 file.

    TMY rows are hour-*ending* values in local standard time (NSRDB TMY3 user manual,
    Wilcox & Marion 2008, NREL/TP-581-43156, section 2.3); they are re-labelled here as
    hour-starting UTC intervals. The typical year is repeated for any requested year
    (``coerce_year``), so a TMY serves as a plausible weather history for backtests.
    """

    def __init__(self, path: str | Path) -> None:
        import pvlib

        path = Path(path)
        if path.suffix.lower() == ".tm2":
            data, meta = pvlib.iotools.read_tmy2(path)
            data = data.rename(
                columns={
                    "GHI": "ghi",
                    "DNI": "dni",
                    "DHI": "dhi",
                    "DryBulb": "temp_air",
                    "Wspd": "wind_speed",
                    "TotCld": "cloud_tenths",
                }
            )
            data["temp_air"] = data["temp_air"] / 10.0  # TMY2 stores tenths of °C
            data["wind_speed"] = data["wind_speed"] / 10.0  # and tenths of m/s
        else:
            data, meta = pvlib.iotools.read_tmy3(path, coerce_year=1990)
            data = data.rename(columns={"TotCld (tenths)": "cloud_tenths"})
        self.path = path
        self.latitude = float(meta["latitude"])
        self.longitude = float(meta["longitude"])
        self.altitude = float(meta["altitude"])
        index = pd.DatetimeIndex(data.index).tz_convert("UTC") - np.timedelta64(1, "h")
        order = np.argsort(_hour_of_year(index))
        self._hoy = _hour_of_year(index)[order]
        cols = ("ghi", "dni", "dhi", "temp_air", "wind_speed")
        self._cols = {c: data[c].to_numpy(dtype=float)[order] for c in cols}
        cloud = data["cloud_tenths"].to_numpy(dtype=float)[order] * 10.0
        self._cols["cloud_cover"] = np.where((cloud >= 0) & (cloud <= 100), cloud, np.nan)

    def weather(self, start: datetime, end: datetime) -> WeatherFrame:
        start, end = utc(start), utc(end)
        if end <= start:
            raise ValueError("end must be after start")
        first = pd.Timestamp(start).floor("h")
        times = pd.date_range(first, pd.Timestamp(end), freq="h", inclusive="left")
        rows = np.searchsorted(self._hoy, _hour_of_year(times) % len(self._hoy))
        rows = np.minimum(rows, len(self._hoy) - 1)
        return WeatherFrame(
            times=times.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]"),
            interval_s=3600,
            latitude=self.latitude,
            longitude=self.longitude,
            altitude=self.altitude,
            source=f"TMY {self.path.name}",
            **{c: v[rows] for c, v in self._cols.items()},
        )


def _hour_of_year(index: pd.DatetimeIndex) -> np.ndarray:
    """Hours since 1 January 00:00 UTC, leap days folded onto 28 February."""
    doy = index.dayofyear.to_numpy() - 1
    leap = index.is_leap_year & (doy >= 59)
    return (np.where(leap, doy - 1, doy) * 24 + index.hour.to_numpy()).astype(int)
