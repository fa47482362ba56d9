"""One simulated DER on a clock: the narrow interface protocol simulators wrap.

A protocol simulator (``derms.sim.protocols.<protocol>``) serves one device over a real
protocol stack; :class:`SimulatedDevice` gives it that device's physics from
:mod:`derms.sim.physics` through a one-row :class:`~derms.sim.fleet.FleetSimulator`, so a
2030.5 client, a SunSpec server or an OCPP charge point behave like the devices of the
fleet simulator.
"""

from __future__ import annotations

from datetime import datetime

from derms.core.clock import Clock
from derms.core.controls import Control
from derms.core.der import Der
from derms.core.site import Site
from derms.core.telemetry import Telemetry
from derms.sim.fleet import FleetSimulator
from derms.sim.weather import Weather


class SimulatedDevice:
    """``der``'s physics stepped to ``clock.now()`` on every read or control."""

    def __init__(
        self,
        der: Der,
        clock: Clock,
        *,
        site: Site | None = None,
        seed: int = 0,
        weather: Weather | None = None,
        f_nom_hz: float = 60.0,
    ) -> None:
        self.der = der
        self.clock = clock
        self.fleet = FleetSimulator(
            [der], [site] if site else [], start=clock.now(), seed=seed, weather=weather, f_nom_hz=f_nom_hz
        )

    def step(self) -> None:
        """Advance the physics to the clock's now."""
        self.fleet.step(self.clock.now())

    def apply(self, control: Control, *, until: datetime | None = None) -> str:
        """Step, then apply ``control`` (see :meth:`FleetSimulator.apply`); returns its slot."""
        self.step()
        return self.fleet.apply(self.der.id, control, until=until)

    def telemetry(self) -> Telemetry | None:
        """Step, then the device's sample (``None`` while it is offline)."""
        self.step()
        samples = self.fleet.samples()
        return samples[0] if samples else None

    def set_online(self, online: bool, detail: str = "") -> None:
        self.fleet.set_online(self.fleet.select(), online, detail)

    @property
    def p_w(self) -> float:
        """Active power at the last step [W] (derms sign: positive injects)."""
        return float(self.fleet.power()[0])
