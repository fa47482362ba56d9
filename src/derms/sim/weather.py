"""Weather and PV output per watt from the TMY3 file that ships inside pvlib.

The simulator never fetches data: it reads ``pvlib/data/723170TYA.CSV`` (Greensboro
Piedmont Triad International, NC, TMY3 [1]_) with :func:`pvlib.iotools.read_tmy3` and maps
the typical year onto the simulated calendar year by month, day and hour (a TMY is a
sequence of typical months drawn from different years, so only its position in the year
means anything). In a leap year 29 February repeats 28 February.

For each mounting :class:`Orientation` the DC output per watt of nameplate is computed
once per simulated year with a pvlib PVWatts model chain [2]_ (Perez-free isotropic
transposition, SAPM cell temperature, PVWatts system losses) at the middle of every
hour, the TMY's hour-ending averages being centred there; between hours the simulator
interpolates linearly.

References
----------
.. [1] S. Wilcox and W. Marion, "Users Manual for TMY3 Data Sets", NREL/TP-581-43156, 2008.
.. [2] A. P. Dobos, "PVWatts Version 5 Manual", NREL/TP-6A20-62641, 2014.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
from numpy.typing import NDArray
from pvlib.location import Location
from pvlib.modelchain import ModelChain
from pvlib.pvsystem import Array, FixedMount, PVSystem, SingleAxisTrackerMount
from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS

TMY3_FILE = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"
"""Greensboro NC TMY3 file bundled with pvlib."""

GAMMA_PDC = -0.004
"""PVWatts temperature coefficient of power [1/°C] for standard modules (Dobos 2014, table 2)."""

_HOURS_TO_FEB29 = (31 + 28) * 24


@dataclass(frozen=True, slots=True)
class Orientation:
    """A PV mounting: fixed tilt/azimuth [degrees, azimuth clockwise from north] or a tracker."""

    name: str
    tilt_deg: float = 0.0
    azimuth_deg: float = 180.0
    tracking: bool = False
    rooftop: bool = True

    def mount(self) -> FixedMount | SingleAxisTrackerMount:
        if self.tracking:
            return SingleAxisTrackerMount(axis_azimuth=180.0, max_angle=60.0, backtrack=True, gcr=0.35)
        return FixedMount(surface_tilt=self.tilt_deg, surface_azimuth=self.azimuth_deg)

    def temperature_parameters(self) -> dict[str, float]:
        """SAPM cell temperature parameters: close-mount for roofs, open rack for plants."""
        key = "close_mount_glass_glass" if self.rooftop else "open_rack_glass_polymer"
        return dict(TEMPERATURE_MODEL_PARAMETERS["sapm"][key])


ORIENTATIONS: tuple[Orientation, ...] = (
    Orientation("south", tilt_deg=25.0, azimuth_deg=180.0),
    Orientation("east", tilt_deg=20.0, azimuth_deg=90.0),
    Orientation("west", tilt_deg=20.0, azimuth_deg=270.0),
    Orientation("tracker", tracking=True, rooftop=False),
)
"""Orientation index 0..3 as used by :class:`derms.sim.physics.PvArrays`."""


def pvwatts_chain(orientation: Orientation, location: Location) -> ModelChain:
    """The PVWatts model chain for 1 W of DC nameplate with one mounting."""
    array = Array(
        orientation.mount(),
        module_parameters={"pdc0": 1.0, "gamma_pdc": GAMMA_PDC},
        temperature_model_parameters=orientation.temperature_parameters(),
    )
    system = PVSystem(arrays=[array], inverter_parameters={"pdc0": 1.0})
    return ModelChain.with_pvwatts(system, location, transposition_model="isotropic")


@dataclass(frozen=True, slots=True)
class _YearTable:
    t0_s: float
    """Epoch seconds [s] of the first sample (00:30 local standard time, 1 January)."""
    temp_air_c: NDArray[np.float64]
    dc_per_w: NDArray[np.float64]
    """Shape (orientations, hours): DC output per W of nameplate [W/W]."""


class Weather:
    """Hourly TMY3 weather and PV output per watt, mapped onto any simulated year."""

    def __init__(self, path: Path = TMY3_FILE, orientations: tuple[Orientation, ...] = ORIENTATIONS) -> None:
        data, meta = pvlib.iotools.read_tmy3(str(path), map_variables=True)
        self.orientations = orientations
        self.tz_offset_s = float(meta["TZ"]) * 3600.0
        """Local standard time minus UTC [s] (TMY times are local standard time)."""
        self.location = Location(
            float(meta["latitude"]),
            float(meta["longitude"]),
            tz=f"Etc/GMT{-int(meta['TZ']):+d}",
            altitude=float(meta["altitude"]),
            name=str(meta["Name"]).strip('"'),
        )
        columns = ["ghi", "dni", "dhi", "temp_air", "wind_speed"]
        self._hourly = data[columns].to_numpy(dtype=np.float64)
        if len(self._hourly) != 8760:
            raise ValueError(f"{path}: a TMY3 file has 8760 hourly rows, found {len(self._hourly)}")
        self._tables: dict[int, _YearTable] = {}

    def hourly_frame(self, year: int) -> pd.DataFrame:
        """TMY weather placed at the middle of each hour of ``year`` (local standard time)."""
        rows = self._hourly
        if calendar.isleap(year):
            feb28 = rows[_HOURS_TO_FEB29 - 24 : _HOURS_TO_FEB29]
            rows = np.concatenate([rows[:_HOURS_TO_FEB29], feb28, rows[_HOURS_TO_FEB29:]])
        start = pd.Timestamp(year=year, month=1, day=1, hour=0, minute=30, tz=self.location.tz)
        index = pd.date_range(start, periods=len(rows), freq="h")
        return pd.DataFrame(rows, index=index, columns=["ghi", "dni", "dhi", "temp_air", "wind_speed"])

    def _table(self, year: int) -> _YearTable:
        table = self._tables.get(year)
        if table is None:
            frame = self.hourly_frame(year)
            dc = np.empty((len(self.orientations), len(frame)))
            for k, orientation in enumerate(self.orientations):
                chain = pvwatts_chain(orientation, self.location)
                chain.run_model(frame)
                dc[k] = np.nan_to_num(np.asarray(chain.results.dc, dtype=np.float64), nan=0.0).clip(min=0.0)
            t0 = frame.index[0].timestamp()
            table = _YearTable(float(t0), frame["temp_air"].to_numpy(np.float64), dc)
            self._tables[year] = table
        return table

    def _position(self, t_s: float) -> tuple[_YearTable, int, float]:
        year = datetime.fromtimestamp(t_s + self.tz_offset_s, UTC).year
        table = self._table(year)
        x = min(max((t_s - table.t0_s) / 3600.0, 0.0), len(table.temp_air_c) - 1.0)
        i = min(int(x), len(table.temp_air_c) - 2)
        return table, i, x - i

    def temp_air_c(self, t_s: float) -> float:
        """Outdoor dry-bulb temperature [°C] at epoch time ``t_s`` [s]."""
        table, i, w = self._position(t_s)
        return float(table.temp_air_c[i] * (1.0 - w) + table.temp_air_c[i + 1] * w)

    def dc_per_w(self, t_s: float) -> NDArray[np.float64]:
        """DC output per W of nameplate [W/W] for every orientation at epoch time ``t_s`` [s]."""
        table, i, w = self._position(t_s)
        return table.dc_per_w[:, i] * (1.0 - w) + table.dc_per_w[:, i + 1] * w

    def local_hour(self, t_s: float) -> float:
        """Hour of the day in the weather station's local standard time [h]."""
        return ((t_s + self.tz_offset_s) / 3600.0) % 24.0


@functools.cache
def default_weather() -> Weather:
    """The process-wide weather of the bundled TMY3 file (its per-year tables are shared)."""
    return Weather()
