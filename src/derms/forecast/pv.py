"""PV power forecasts for many sites at once, with quantiles.

The chain is PVWatts (Dobos 2014): plane-of-array irradiance (isotropic sky, Liu & Jordan
1963), SAPM cell temperature (King et al. 2004), ``pvwatts_dc`` and the PVWatts inverter,
evaluated on ``(T, N)`` arrays. Where the weather has no irradiance (NaN) the clear sky
is used (Haurwitz 1945), so a forecast always exists.

Quantiles come from the clear-sky index ``kt = GHI / GHI_clear``: the P50 uses the
forecast ``kt``, other quantiles ``kt + e_q`` where ``e_q`` are empirical quantiles of
past clear-sky-index errors (see :func:`kt_error_quantiles`), clipped to ``[0, 1.2]``; the levels are then sorted per interval so they never cross
(Chernozhukov, Fernández-Val & Galichon 2010).

References
----------
.. [1] Dobos, A. P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
.. [2] King, D. L., Boyson, W. E., Kratochvil, J. A. (2004). Photovoltaic Array Performance
   Model. SAND2004-3535, eq. 11-12.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pvlib

from derms.forecast.quantiles import QuantileForecast
from derms.forecast.solar import clear_sky_ghi, day_of_year, solar_angles
from derms.forecast.weather import WeatherFrame

KT_MAX = 1.2
"""Upper bound of the clear-sky index kept after adding error quantiles [-]."""
_SAPM = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
BLOCK_ELEMENTS = 1 << 18
"""Interval × site elements per block of sites: the chain's temporaries (2 MB each) stay in
cache instead of streaming 100 MB arrays through memory; at 10,000 sites × 1,344 intervals
one pass took about 4× longer than blocks of this size on the 2-core development machine."""


@dataclass(frozen=True, slots=True)
class PvSites:
    """Columnar description of PV systems, one row per site.

    ``pdc0_w`` is the DC nameplate [W] and ``pac0_w`` the inverter AC rating [W];
    tilt and azimuth in degrees (azimuth clockwise from north, 180 = south).
    ``weather_index`` picks, for each site, one of the weather frames passed to
    :func:`forecast_pv` (0 for all when there is one); ``feeder`` is the feeder row.
    """

    latitude: np.ndarray
    longitude: np.ndarray
    surface_tilt: np.ndarray
    surface_azimuth: np.ndarray
    pdc0_w: np.ndarray
    pac0_w: np.ndarray
    feeder: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    weather_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gamma_pdc: float = -0.004
    """Temperature coefficient of DC power [1/°C]."""

    def __post_init__(self) -> None:
        n = len(self.latitude)
        for name in ("longitude", "surface_tilt", "surface_azimuth", "pdc0_w", "pac0_w"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, expected {n}")
        for name in ("feeder", "weather_index"):
            if len(getattr(self, name)) == 0:
                object.__setattr__(self, name, np.zeros(n, dtype=np.int64))
            elif len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, expected {n}")
        if np.any(self.pdc0_w < 0) or np.any(self.pac0_w < 0):
            raise ValueError("pdc0_w and pac0_w must be >= 0")

    def __len__(self) -> int:
        return len(self.latitude)

    def rows(self, rows: slice) -> PvSites:
        """The sites in ``rows``, same columns."""
        return PvSites(
            self.latitude[rows],
            self.longitude[rows],
            self.surface_tilt[rows],
            self.surface_azimuth[rows],
            self.pdc0_w[rows],
            self.pac0_w[rows],
            self.feeder[rows],
            self.weather_index[rows],
            self.gamma_pdc,
        )


def site_blocks(n_sites: int, n_times: int) -> list[slice]:
    """Consecutive blocks of sites holding about :data:`BLOCK_ELEMENTS` intervals × sites each."""
    size = max(1, BLOCK_ELEMENTS // max(n_times, 1))
    return [slice(i, min(i + size, n_sites)) for i in range(0, n_sites, size)]


def pvwatts_ac(
    sites: PvSites,
    times: np.ndarray,
    ghi: np.ndarray,
    temp_air: np.ndarray | float,
    wind_speed: np.ndarray | float,
    interval_s: int,
    *,
    angles: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """AC power [W] (positive = injection), shape ``(T, N)``, from GHI, air temperature [°C], wind [m/s].

    Solar geometry at interval midpoints (``angles``: the zenith and azimuth there, when the
    caller has them already); DNI/DHI from GHI with Erbs et al. (1982). The chain runs only
    on the elements with GHI > 0: without irradiance the plane of array receives none, so DC
    and AC power are 0 (the PVWatts inverter gives 0 at 0 DC), and night is about half of
    every day.
    """
    mid = times.astype("datetime64[s]") + np.timedelta64(interval_s // 2, "s")
    zenith, azimuth = solar_angles(mid, sites.latitude, sites.longitude) if angles is None else angles
    shape = zenith.shape
    lit = np.broadcast_to(ghi, shape) > 0.0
    t, n = np.nonzero(lit)
    pac = np.zeros(shape)
    if t.size == 0:
        return pac
    g, z = np.broadcast_to(ghi, shape)[lit], zenith[lit]
    split = pvlib.irradiance.erbs(g, z, day_of_year(mid)[t])
    poa = pvlib.irradiance.get_total_irradiance(
        sites.surface_tilt[n],
        sites.surface_azimuth[n],
        z,
        azimuth[lit],
        np.asarray(split["dni"]),
        g,
        np.asarray(split["dhi"]),
    )["poa_global"]
    poa = np.nan_to_num(np.asarray(poa), nan=0.0)
    temp_cell = pvlib.temperature.sapm_cell(
        poa, np.broadcast_to(temp_air, shape)[lit], np.broadcast_to(wind_speed, shape)[lit], **_SAPM
    )
    pdc = pvlib.pvsystem.pvwatts_dc(poa, temp_cell, sites.pdc0_w[n], sites.gamma_pdc)
    pdc0_inv = np.where(sites.pac0_w > 0, sites.pac0_w / 0.96, 1.0)[n]
    with np.errstate(divide="ignore", over="ignore"):  # pvlib divides by the loading, ~0 at dawn
        ac = pvlib.inverter.pvwatts(pdc, pdc0_inv)
    pac[lit] = np.clip(np.nan_to_num(np.asarray(ac)), 0.0, sites.pac0_w[n])
    return pac


def forecast_pv(
    sites: PvSites,
    weather: WeatherFrame | list[WeatherFrame],
    *,
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
    kt_errors: dict[float, float] | None = None,
) -> QuantileForecast:
    """Per-site PV forecast [W] over the weather's intervals, as quantiles.

    ``weather`` is one frame for all sites or a list indexed by ``sites.weather_index``;
    all frames must share the same time grid. ``kt_errors`` maps quantile level to the
    additive clear-sky-index error at that level (default: :func:`kt_error_quantiles`
    on the Greensboro TMY, cached). Returns values shaped ``(Q, T, N)``.
    """
    frames = weather if isinstance(weather, list) else [weather]
    times, interval_s = frames[0].times, frames[0].interval_s
    if any(not np.array_equal(f.times, times) or f.interval_s != interval_s for f in frames):
        raise ValueError("all weather frames must share one time grid")
    if np.any((sites.weather_index < 0) | (sites.weather_index >= len(frames))):
        raise ValueError("weather_index points outside the weather list")
    if kt_errors is None:
        from derms.forecast.calibration import default_kt_errors

        kt_errors = default_kt_errors()
    missing = [q for q in quantiles if q != 0.5 and q not in kt_errors]
    if missing:
        raise ValueError(f"no clear-sky-index error known for quantiles {missing}")

    values = np.empty((len(quantiles), len(times), len(sites)))
    for rows in site_blocks(len(sites), len(times)):
        values[:, :, rows] = _forecast_block(sites.rows(rows), frames, quantiles, kt_errors)
    return QuantileForecast(times=times, interval_s=interval_s, quantiles=quantiles, values=values)


def _forecast_block(
    sites: PvSites, frames: list[WeatherFrame], quantiles: tuple[float, ...], kt_errors: dict[float, float]
) -> np.ndarray:
    """:func:`forecast_pv` for a block of sites (checked inputs): ``(Q, T, N)``."""
    times, interval_s = frames[0].times, frames[0].interval_s

    def column(name: str) -> np.ndarray:
        return np.stack([getattr(f, name) for f in frames], axis=1)[:, sites.weather_index]

    mid = times.astype("datetime64[s]") + np.timedelta64(interval_s // 2, "s")
    zenith, azimuth = solar_angles(mid, sites.latitude, sites.longitude)
    clear = clear_sky_ghi(zenith)
    ghi = column("ghi")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        kt = np.where(clear > 20.0, ghi / clear, 1.0)
    kt = np.where(np.isnan(kt), 1.0, np.clip(kt, 0.0, KT_MAX))  # clear-sky fallback
    temp = np.nan_to_num(column("temp_air"), nan=20.0)
    wind = np.nan_to_num(column("wind_speed"), nan=1.0)
    values = np.empty((len(quantiles), len(times), len(sites)))
    for i, q in enumerate(quantiles):
        kt_q = kt if q == 0.5 else np.clip(kt + kt_errors[q], 0.0, KT_MAX)
        values[i] = pvwatts_ac(sites, times, kt_q * clear, temp, wind, interval_s, angles=(zenith, azimuth))
    # A clearer sky can lower POA on a plane facing away from the sun (less diffuse light),
    # so the mapping kt -> power is not monotone everywhere: rearrange (Chernozhukov et al. 2010).
    values.sort(axis=0)
    return values
