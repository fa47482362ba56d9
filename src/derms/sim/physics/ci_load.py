"""Commercial and industrial base load with a sheddable share.

A synthetic occupancy profile: ``night_fraction`` of peak outside business hours, rising
and falling over an hour around ``open_hour``/``close_hour`` (logistic ramps), plus a
cooling term proportional to outdoor temperature above 22 °C and an AR(1) noise of a few
per cent. ``flexible_fraction`` of the present load can be shed, a third per shed level
(levels 1..3), or traded away under an active power target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from derms.sim.physics.base import Columns, FloatArray

COOLING_PER_K = 0.02
"""Load increase per kelvin of outdoor temperature above 22 °C [1/K]."""
NOISE_SIGMA = 0.03
NOISE_TAU_S = 1800.0


@dataclass(slots=True)
class CiLoads(Columns):
    """One row per site load. Powers W, hours local."""

    w_peak: FloatArray
    night_fraction: FloatArray
    flexible_fraction: FloatArray
    open_hour: FloatArray
    close_hour: FloatArray
    noise: FloatArray
    """AR(1) multiplicative noise state [-]."""

    def base_w(self, local_hour: float, t_out_c: float | FloatArray) -> FloatArray:
        """Uncontrolled demand [W] (a magnitude)."""
        rise = 1.0 / (1.0 + np.exp(-(local_hour - self.open_hour) * 4.0))
        fall = 1.0 / (1.0 + np.exp((local_hour - self.close_hour) * 4.0))
        occupied = rise * fall
        shape = self.night_fraction + (1.0 - self.night_fraction) * occupied
        cooling = 1.0 + COOLING_PER_K * np.maximum(t_out_c - 22.0, 0.0) * occupied
        return self.w_peak * shape * cooling * (1.0 + self.noise)

    def step(
        self,
        local_hour: float,
        t_out_c: float | FloatArray,
        dt_s: float,
        shed_level: FloatArray,
        target_w: FloatArray,
        limit_w: FloatArray,
        rng: np.random.Generator,
    ) -> FloatArray:
        """Advance ``dt_s`` [s]; return AC power [W] (<= 0).

        ``target_w`` is a consumption target (NaN for none), ``limit_w`` a consumption cap.
        """
        a = np.exp(-dt_s / NOISE_TAU_S)
        self.noise = a * self.noise + np.sqrt(1.0 - a * a) * NOISE_SIGMA * rng.standard_normal(
            len(self.noise)
        )
        base = self.base_w(local_hour, t_out_c)
        floor = base * (1.0 - self.flexible_fraction)
        demand = base - base * self.flexible_fraction * np.clip(shed_level, 0.0, 3.0) / 3.0
        demand = np.where(np.isnan(target_w), demand, np.clip(target_w, floor, base))
        return -np.minimum(demand, limit_w)
