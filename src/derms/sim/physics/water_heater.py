"""Electric resistance water heater: one-node (fully mixed) tank with draws and a thermostat.

The tank temperature :math:`T` obeys (the one-node model of Kondoh et al. [1]_,
without stratification)

.. math::

    C\\,\\frac{dT}{dt} = -UA\\,(T - T_{amb}) - \\dot m\\,c_p\\,(T - T_{in}) + P\\,u,

linear in :math:`T` for a held draw :math:`\\dot m` and element state :math:`u`, so a step
is exact: :math:`T \\to T_\\infty + (T - T_\\infty)e^{-h/\\tau}` with
:math:`\\tau = C/(UA + \\dot m c_p)` and
:math:`T_\\infty = (UA\\,T_{amb} + \\dot m c_p T_{in} + P u)/(UA + \\dot m c_p)`.
The element switches on below ``setpoint - deadband`` and off at the set point. Draw events
start at random with a morning/evening diurnal intensity (a synthetic shape normalised to
its daily mean), each drawing an exponentially distributed volume at a fixed flow.
Shed lowers and load-up raises the set point by ``offset_k`` within [t_min_c, t_max_c].

References
----------
.. [1] J. Kondoh, N. Lu and D. J. Hammerstrom, "An Evaluation of the Water Heater Load
   Potential for Providing Regulation Service", IEEE Trans. Power Systems 26(3), 2011.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from derms.sim.physics.base import BoolArray, Columns, FloatArray
from derms.sim.physics.hvac import first_order_step

CP_WATER = 4184.0
"""Specific heat of water [J/(kg K)]; 1 L is taken as 1 kg."""
DRAW_FLOW_LPS = 0.1
"""Flow during a draw event [L/s] (6 L/min, a shower)."""
DRAW_EVENT_L = 20.0
"""Mean volume of one draw event [L]."""

DIURNAL_DRAW = np.array(
    [0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 1.8, 2.4, 2.0, 1.4, 1.0, 0.9,
     0.9, 0.8, 0.7, 0.8, 1.0, 1.4, 1.8, 1.9, 1.6, 1.2, 0.8, 0.4]
)  # fmt: skip
DIURNAL_DRAW = DIURNAL_DRAW / DIURNAL_DRAW.mean()
"""Relative hot-water draw intensity per local hour (mean 1)."""


@dataclass(slots=True)
class WaterHeaters(Columns):
    """One row per tank. Temperatures °C, volumes L, powers W."""

    volume_l: FloatArray
    element_w: FloatArray
    ua_w_per_k: FloatArray
    """Standby loss coefficient [W/K]."""
    setpoint_c: FloatArray
    deadband_k: FloatArray
    t_min_c: FloatArray
    t_max_c: FloatArray
    t_inlet_c: FloatArray
    t_ambient_c: FloatArray
    daily_draw_l: FloatArray
    t_tank_c: FloatArray
    on: BoolArray
    draw_left_l: FloatArray
    """Volume still to be drawn by the current event [L]."""

    def start_draws(self, local_hour: float, dt_s: float, rng: np.random.Generator) -> None:
        """Start new draw events (Poisson arrivals with the diurnal intensity)."""
        rate = self.daily_draw_l / DRAW_EVENT_L / 86_400.0 * DIURNAL_DRAW[int(local_hour) % 24]
        starts = (self.draw_left_l <= 0.0) & (rng.random(len(self.volume_l)) < rate * dt_s)
        if starts.any():
            self.draw_left_l[starts] = rng.exponential(DRAW_EVENT_L, int(starts.sum()))

    def step(self, dt_s: float, offset_k: FloatArray, allowed: BoolArray) -> FloatArray:
        """Advance ``dt_s`` [s]; return AC power [W] (<= 0)."""
        sp = np.clip(self.setpoint_c + offset_k, self.t_min_c, self.t_max_c)
        self.on = ((self.on | (self.t_tank_c < sp - self.deadband_k)) & (self.t_tank_c < sp)) & allowed
        drawn_l = np.minimum(self.draw_left_l, DRAW_FLOW_LPS * dt_s)
        self.draw_left_l = self.draw_left_l - drawn_l
        mc = drawn_l / dt_s * CP_WATER
        p = self.element_w * self.on
        conductance = self.ua_w_per_k + mc
        t_inf = (self.ua_w_per_k * self.t_ambient_c + mc * self.t_inlet_c + p) / conductance
        self.t_tank_c = first_order_step(self.t_tank_c, t_inf, self.volume_l * CP_WATER / conductance, dt_s)
        return -p
