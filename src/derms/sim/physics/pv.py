"""PV arrays behind inverters: pvlib PVWatts DC per watt (see :mod:`derms.sim.weather`) and the
PVWatts inverter model [1]_ (:func:`pvlib.inverter.pvwatts`), vectorised over devices.

References
----------
.. [1] A. P. Dobos, "PVWatts Version 5 Manual", NREL/TP-6A20-62641, 2014, section 10.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pvlib
from numpy.typing import NDArray

from derms.sim.physics.base import Columns, FloatArray

ETA_INV_NOM = 0.96
"""PVWatts nominal inverter efficiency [-] (Dobos 2014, eq. 10.2)."""


@dataclass(slots=True)
class PvArrays(Columns):
    """One row per PV system. ``w_ac`` is the inverter's AC rating, ``w_dc`` the array nameplate."""

    w_dc: FloatArray
    """Array DC nameplate at STC [W]."""
    w_ac: FloatArray
    """Inverter AC rating [W]; the PVWatts inverter DC limit is ``w_ac / ETA_INV_NOM``."""
    orientation: NDArray[np.intp]
    """Index into :data:`derms.sim.weather.ORIENTATIONS`."""

    def available_w(self, dc_per_w: FloatArray, irradiance_factor: FloatArray) -> FloatArray:
        """AC power available [W] given DC per W for each orientation [W/W] and a cloud factor [-]."""
        pdc = self.w_dc * dc_per_w[self.orientation] * irradiance_factor
        pac = pvlib.inverter.pvwatts(pdc, self.w_ac / ETA_INV_NOM, eta_inv_nom=ETA_INV_NOM)
        return np.clip(np.asarray(pac, dtype=np.float64), 0.0, self.w_ac)
