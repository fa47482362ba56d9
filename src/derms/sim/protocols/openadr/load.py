"""One C&I load (:class:`derms.sim.physics.ci_load.CiLoads`, one row) under OpenADR signals.

The signals in force set the physics inputs: SIMPLE level → shed level (a third of the
flexible share per level), LOAD_DISPATCH/LOAD_CONTROL setpoints and 3.x
IMPORT_CAPACITY_LIMIT → a consumption cap [W], LOAD_DISPATCH delta → a target below the
uncontrolled demand. Nothing in force → normal operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from derms.sim.physics.ci_load import CiLoads


@dataclass(slots=True)
class Command:
    """What the VEN asks of the load now; ``None`` fields ask for nothing."""

    shed_level: int = 0
    limit_w: float | None = None
    reduce_w: float | None = None


@dataclass
class SimulatedCiLoad:
    w_peak: float = 200_000.0
    flexible_fraction: float = 0.3
    night_fraction: float = 0.35
    open_hour: float = 7.0
    close_hour: float = 19.0
    utc_offset_h: float = 0.0
    t_out_c: float = 30.0
    seed: int = 0
    p_w: float = 0.0
    """Last AC power [W] (<= 0: consumption)."""
    energy_wh: float = 0.0
    """Energy consumed so far [Wh]."""
    loads: CiLoads = field(init=False)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        one = np.ones(1)
        self.loads = CiLoads(
            w_peak=one * self.w_peak,
            night_fraction=one * self.night_fraction,
            flexible_fraction=one * self.flexible_fraction,
            open_hour=one * self.open_hour,
            close_hour=one * self.close_hour,
            noise=np.zeros(1),
        )
        self.rng = np.random.default_rng(self.seed)

    def local_hour(self, now: datetime) -> float:
        return (now.hour + now.minute / 60 + now.second / 3600 + self.utc_offset_h) % 24

    def step(self, now: datetime, dt_s: float, command: Command) -> float:
        """Advance ``dt_s`` seconds under ``command``; returns the new AC power [W]."""
        hour = self.local_hour(now)
        base = float(self.loads.base_w(hour, self.t_out_c)[0])
        target = np.array([max(base - command.reduce_w, 0.0) if command.reduce_w is not None else np.nan])
        limit = np.array([command.limit_w if command.limit_w is not None else np.inf])
        shed = np.array([float(command.shed_level)])
        p = self.loads.step(hour, self.t_out_c, dt_s, shed, target, limit, self.rng)
        self.p_w = float(p[0])
        self.energy_wh += -self.p_w * dt_s / 3600.0
        return self.p_w
