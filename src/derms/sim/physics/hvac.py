"""Thermostatically controlled HVAC: a 1R1C building with a hysteresis thermostat.

The indoor temperature :math:`\\theta` follows :math:`C\\,d\\theta/dt = (\\theta_a - \\theta)/R + Q`,
whose exact solution over a step :math:`h` with the compressor state held is
(Callaway [1]_, eq. 1, after Mortensen and Haggerty [2]_)

.. math::

    \\theta(t+h) = \\theta_\\infty + (\\theta(t) - \\theta_\\infty)\\, e^{-h/(RC)},\\qquad
    \\theta_\\infty = \\theta_a + R\\,(Q_{gain} - m\\,\\mathrm{COP}\\,P_{elec}\\,u),

with :math:`u \\in \\{0, 1\\}` the compressor state and :math:`m = +1` when cooling,
:math:`-1` when heating (heat pump). The system cools when the outdoor temperature is at or
above the 18.3 °C (65 °F) degree-day base temperature and heats below it. The thermostat switches on when the temperature leaves the deadband on the
uncomfortable side and off when it leaves it on the other side.

Demand response moves the set point by ``offset_k``: positive relaxes it towards ambient
(shed), negative pre-cools or pre-heats (load up); the effective set point never leaves
the occupant's comfort band.

References
----------
.. [1] D. S. Callaway, "Tapping the energy storage potential in electric loads to deliver load
   following and regulation, with application to wind energy", Energy Conversion and
   Management 50(5), 2009, doi:10.1016/j.enconman.2009.01.021.
.. [2] R. E. Mortensen and K. P. Haggerty, "A stochastic computer model for heating and cooling
   loads", IEEE Trans. Power Systems 3(3), 1988.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from derms.sim.physics.base import BoolArray, Columns, FloatArray

BALANCE_POINT_C = 18.3
"""Outdoor temperature [°C] at and above which the system is in cooling mode (65 °F, the usual
degree-day base temperature)."""


def first_order_step(theta: FloatArray, theta_inf: FloatArray, tau_s: FloatArray, dt_s: float) -> FloatArray:
    """Exact step of :math:`\\tau\\,d\\theta/dt = \\theta_\\infty - \\theta` over ``dt_s`` [s]."""
    return theta_inf + (theta - theta_inf) * np.exp(-dt_s / tau_s)


@dataclass(slots=True)
class Hvac(Columns):
    """One row per thermostat and its building. Temperatures °C, R in K/W, C in J/K."""

    r_k_per_w: FloatArray
    c_j_per_k: FloatArray
    w_elec: FloatArray
    """Compressor electric power when running [W]."""
    cop: FloatArray
    """Coefficient of performance [-]."""
    gain_w: FloatArray
    """Internal and solar heat gains [W]."""
    setpoint_c: FloatArray
    deadband_k: FloatArray
    comfort_min_c: FloatArray
    comfort_max_c: FloatArray
    t_in_c: FloatArray
    on: BoolArray

    def effective_setpoint(self, cooling: BoolArray, offset_k: FloatArray) -> FloatArray:
        """Set point after a demand-response offset, clipped to the comfort band [°C]."""
        shifted = self.setpoint_c + np.where(cooling, offset_k, -offset_k)
        return np.clip(shifted, self.comfort_min_c, self.comfort_max_c)

    def step(
        self, t_out_c: float | FloatArray, dt_s: float, offset_k: FloatArray, allowed: BoolArray
    ) -> FloatArray:
        """Advance ``dt_s`` [s] with outdoor temperature ``t_out_c``; return AC power [W] (<= 0).

        ``allowed`` False keeps the compressor off (load limit below its rating, disconnected).
        """
        cooling = np.broadcast_to(np.asarray(t_out_c) >= BALANCE_POINT_C, self.setpoint_c.shape)
        sp = self.effective_setpoint(cooling, offset_k)
        half = self.deadband_k / 2.0
        too_warm, too_cool = self.t_in_c > sp + half, self.t_in_c < sp - half
        self.on = (
            np.where(cooling, (self.on | too_warm) & ~too_cool, (self.on | too_cool) & ~too_warm) & allowed
        )
        sign = np.where(cooling, 1.0, -1.0)
        q_hvac = sign * self.cop * self.w_elec * self.on
        theta_inf = t_out_c + self.r_k_per_w * (self.gain_w - q_hvac)
        self.t_in_c = first_order_step(self.t_in_c, theta_inf, self.r_k_per_w * self.c_j_per_k, dt_s)
        return -self.w_elec * self.on
