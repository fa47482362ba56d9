"""Battery energy storage: state of charge with round-trip efficiency and power/SoC limits.

Energy-reservoir model as used for storage dispatch studies (e.g. Riffonneau et al. [1]_):
with the round-trip efficiency split evenly between charge and discharge,
:math:`\\eta_c = \\eta_d = \\sqrt{\\eta_{rt}}`, a step of length :math:`\\Delta t` at AC
power :math:`P` (positive discharging, derms sign convention) changes stored energy by

.. math::

    \\Delta E = -\\frac{P^+ \\Delta t}{\\eta_d} + \\eta_c P^- \\Delta t,

where :math:`P^+ = \\max(P, 0)` and :math:`P^- = \\max(-P, 0)`. Power is limited by the
converter ratings and by the energy left between ``soc_min`` and ``soc_max`` so that one
step never crosses a bound.

References
----------
.. [1] Y. Riffonneau, S. Bacha, F. Barruel and S. Ploix, "Optimal Power Flow Management for
   Grid Connected PV Systems With Batteries", IEEE Trans. Sustainable Energy 2(3), 2011,
   doi:10.1109/TSTE.2011.2114901.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from derms.sim.physics.base import Columns, FloatArray


@dataclass(slots=True)
class BatteryBank(Columns):
    """One row per battery. Energies in Wh, powers in W, SoC as a fraction of ``wh_max``."""

    wh_max: FloatArray
    """Usable energy capacity [Wh]."""
    w_charge_max: FloatArray
    """Maximum charging power at the AC terminals [W]."""
    w_discharge_max: FloatArray
    """Maximum discharging power at the AC terminals [W]."""
    round_trip_efficiency: FloatArray
    """AC-to-AC round-trip efficiency [-]."""
    soc: FloatArray
    """State of charge [-]."""
    soc_min: FloatArray
    soc_max: FloatArray

    def feasible(self, dt_s: float) -> tuple[FloatArray, FloatArray]:
        """Lowest and highest AC power [W] sustainable for ``dt_s`` seconds from the present SoC."""
        eta = np.sqrt(self.round_trip_efficiency)
        joules = self.wh_max * 3600.0
        p_hi = np.minimum(
            self.w_discharge_max, np.maximum(self.soc - self.soc_min, 0.0) * joules * eta / dt_s
        )
        p_lo = -np.minimum(
            self.w_charge_max, np.maximum(self.soc_max - self.soc, 0.0) * joules / (eta * dt_s)
        )
        return p_lo, p_hi

    def step(self, request_w: FloatArray, dt_s: float) -> FloatArray:
        """Run at ``request_w`` [W] (clipped to what is feasible) for ``dt_s`` [s]; return the AC power."""
        p_lo, p_hi = self.feasible(dt_s)
        p = np.clip(request_w, p_lo, p_hi)
        eta = np.sqrt(self.round_trip_efficiency)
        stored_j = np.where(p > 0.0, -p / eta, -p * eta) * dt_s
        self.soc = np.clip(self.soc + stored_j / (self.wh_max * 3600.0), 0.0, 1.0)
        return p
