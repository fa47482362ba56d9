"""EV charging sessions: arrival, departure, energy need, charger rating and charging limits.

Each charger repeats one session a day. Arrival time, dwell and energy per session are
the quantities Quirós-Tortós et al. [1]_ analyse for home charging; here they are drawn
around per-charger means from simple distributions (normal arrival and dwell, log-normal
energy) whose parameters are assumptions (evening arrival, overnight dwell, 8-16 kWh),
not fitted values. While plugged in the vehicle draws the smallest of the charger rating, the
active charging limit and what the remaining need allows in one step; the charger's
efficiency separates grid energy from energy stored in the vehicle.

References
----------
.. [1] J. Quirós-Tortós, L. F. Ochoa and B. Lees, "A statistical analysis of EV charging
   behavior in the UK", IEEE PES ISGT Latin America, 2015.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from derms.sim.physics.base import BoolArray, Columns, FloatArray

DAY_S = 86_400.0


@dataclass(slots=True)
class EvChargers(Columns):
    """One row per charger and its vehicle. Times are epoch seconds, energies Wh, powers W."""

    w_max: FloatArray
    """Charger rating [W]."""
    efficiency: FloatArray
    """Grid-to-vehicle-battery efficiency [-]."""
    vehicle_wh: FloatArray
    """Vehicle battery capacity [Wh]."""
    arrival_hour: FloatArray
    """Mean arrival time of day, local [h]."""
    dwell_h: FloatArray
    """Mean plugged-in duration [h]."""
    need_wh_mean: FloatArray
    """Mean energy wanted per session [Wh]."""
    connected: BoolArray
    need_wh: FloatArray
    """Energy the vehicle still wants [Wh]."""
    next_arrival_s: FloatArray
    departure_s: FloatArray

    @property
    def vehicle_soc(self) -> FloatArray:
        """Vehicle state of charge [-] implied by the remaining need."""
        return np.clip(1.0 - self.need_wh / self.vehicle_wh, 0.0, 1.0)

    def schedule(self, t_s: float, tz_offset_s: float, rng: np.random.Generator, rows: BoolArray) -> None:
        """Draw the next arrival after ``t_s`` for ``rows`` (local arrival hour ± 1 h)."""
        local_midnight = np.floor((t_s + tz_offset_s) / DAY_S) * DAY_S - tz_offset_s
        arrival = local_midnight + (self.arrival_hour[rows] + rng.normal(0.0, 1.0, rows.sum())) * 3600.0
        self.next_arrival_s[rows] = np.where(arrival <= t_s, arrival + DAY_S, arrival)

    def plug_in(self, rows: BoolArray, t_s: float, need_wh: FloatArray, dwell_s: FloatArray) -> None:
        """Start sessions now on ``rows`` that are not connected."""
        rows = rows & ~self.connected
        self.connected[rows] = True
        self.need_wh[rows] = np.minimum(need_wh[rows], self.vehicle_wh[rows])
        self.departure_s[rows] = t_s + dwell_s[rows]

    def step(
        self, t_s: float, dt_s: float, limit_w: FloatArray, tz_offset_s: float, rng: np.random.Generator
    ) -> FloatArray:
        """Advance sessions to ``t_s`` and charge for ``dt_s``; return AC power [W] (<= 0)."""
        leaving = self.connected & (t_s >= self.departure_s)
        if leaving.any():
            self.connected[leaving] = False
            self.need_wh[leaving] = 0.0
            self.schedule(t_s, tz_offset_s, rng, leaving)
        arriving = ~self.connected & (t_s >= self.next_arrival_s)
        if arriving.any():
            n = int(arriving.sum())
            need = np.zeros_like(self.need_wh)
            dwell = np.zeros_like(self.need_wh)
            need[arriving] = self.need_wh_mean[arriving] * rng.lognormal(-0.125, 0.5, n)
            dwell[arriving] = np.maximum(self.dwell_h[arriving] + rng.normal(0.0, 1.0, n), 0.5) * 3600.0
            self.plug_in(arriving, t_s, need, dwell)
            self.next_arrival_s[arriving] = np.inf
        p_in = np.minimum(np.minimum(self.w_max, limit_w), self.need_wh * 3600.0 / (self.efficiency * dt_s))
        p_in = np.where(self.connected, np.maximum(p_in, 0.0), 0.0)
        self.need_wh = np.maximum(self.need_wh - p_in * self.efficiency * dt_s / 3600.0, 0.0)
        return -p_in
