"""A SunSpec server's device backed by the fleet simulator's physics (:mod:`derms.sim.physics`).

:class:`FleetDevice` offers the same narrow interface as :class:`DeviceModel` (ratings, the
last measured ``w``/``var``/``soc``/``v``/``hz``, and ``step``), but steps a one-row
:class:`~derms.sim.device.SimulatedDevice`: pvlib PV under the simulator's weather, the
battery model with its efficiency and state-of-charge limits. Register controls become core
controls (``ActivePowerLimit``, ``FixedPowerFactor``, ``ChargeDischarge``) applied when they
change.
"""

from __future__ import annotations

from derms.core.clock import Clock
from derms.core.controls import ActivePowerLimit, ChargeDischarge, FixedPowerFactor
from derms.core.der import Der
from derms.sim.device import SimulatedDevice
from derms.sim.protocols.sunspec.inverter import model_list


class FleetDevice:
    """One DER's physics behind a SunSpec register image."""

    def __init__(self, der: Der, clock: Clock, *, seed: int = 0) -> None:
        caps = der.capabilities
        if caps.w_max <= 0:
            raise ValueError(f"{der.id}: a SunSpec device needs w_max > 0")
        self.sim = SimulatedDevice(der, clock, seed=seed)
        self.w_rated = caps.w_max
        self.va_rated = caps.va_max or caps.w_max
        self.var_rated = caps.var_max_inject or 0.44 * caps.w_max
        self.wh_rated = caps.wh_max if der.kind.is_storage else 0.0
        self.w = self.var = self.energy_wh = 0.0
        self.soc = 0.5
        self.v = caps.v_nom
        self.hz = 60.0
        self._applied: tuple[float, float | None, float | None] | None = None

    @property
    def is_storage(self) -> bool:
        return self.wh_rated > 0

    def step(self, dt_s: float, limit_pct: float, pf: float | None, storage_w: float | None) -> None:
        controls = (limit_pct, pf, storage_w)
        previous = self._applied or (None, None, None)
        if controls[0] != previous[0]:
            self.sim.apply(ActivePowerLimit(pct=min(100.0, max(0.0, limit_pct))))
        if controls[1] != previous[1]:
            self.sim.apply(FixedPowerFactor(pf=abs(pf) if pf else 1.0, absorbing=pf is not None and pf < 0))
        if self.is_storage and controls[2] != previous[2]:
            self.sim.apply(ChargeDischarge(w=storage_w or 0.0))
        self._applied = controls
        sample = self.sim.telemetry()
        if sample is None:
            return
        self.w = sample.p_w or 0.0
        self.var = sample.q_var or 0.0
        self.soc = sample.soc if sample.soc is not None else self.soc
        self.v = sample.v_v or self.v
        self.hz = sample.f_hz or self.hz
        self.energy_wh += max(self.w, 0.0) * dt_s / 3600.0


def fleet_device(
    der: Der, clock: Clock, serial: str | None = None, *, seed: int = 0
) -> tuple[FleetDevice, list]:
    """A physics-backed device and its SunSpec model list, for :class:`SunSpecDeviceServer`."""
    device = FleetDevice(der, clock, seed=seed)
    return device, model_list(serial or der.id, device)
