"""The dispatch problem: flexibility, costs, targets, prices and grid rows (solver-independent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from derms.orchestration.flexibility import Flexibility
from derms.orchestration.grid import GridConstraints
from derms.orchestration.inputs import FleetInput, Preferences


class Sense(StrEnum):
    DELIVER = "deliver"
    """Members' net injection change >= value (capacity target, peak reduction)."""
    RESERVE = "reserve"
    """Members' remaining upward headroom >= value (reserve holding)."""


SOONER = 1e-3
"""Relative extra shortfall cost per step nearer now (:meth:`Target.penalties`)."""


@dataclass(frozen=True, slots=True, eq=False)
class Target:
    """One soft target row per step; ``value_w`` is NaN in steps where it is inactive."""

    objective_id: str
    members: np.ndarray
    value_w: np.ndarray
    sense: Sense = Sense.DELIVER
    priority: int = 100

    @property
    def penalty(self) -> float:
        """Cost of a shortfall per kWh: far above any device cost, higher for lower priority numbers."""
        return 1e4 * 100.0 / (100.0 + max(self.priority, 0))

    def penalties(self) -> np.ndarray:
        """Shortfall cost per kWh in each step: :attr:`penalty`, ``SOONER`` more per step nearer
        now, so of two plans short by the same energy the LP picks the one that meets the nearer
        intervals (they are about to be dispatched; later ones are planned again)."""
        steps = len(self.value_w)
        return self.penalty * (1.0 + SOONER * np.arange(steps - 1, -1, -1, dtype=float))


@dataclass(frozen=True, slots=True, eq=False)
class Problem:
    """Everything the optimizer needs. Arrays are per DER unless noted.

    ``bus`` maps each DER to a column of ``grid`` (``-1``: not on a modelled bus). ``prices``
    (per step, currency/kWh) value net injection of ``price_members`` (arbitrage).
    """

    der_ids: tuple[str, ...]
    flex: Flexibility
    cost_up: np.ndarray
    cost_down: np.ndarray
    reliability: np.ndarray
    feeder: np.ndarray
    bus: np.ndarray
    targets: tuple[Target, ...] = ()
    grid: GridConstraints | None = None
    prices: np.ndarray | None = None
    price_members: np.ndarray | None = None
    cost_q: float = 1e-4
    """Cost of reactive power use per kvarh, so vars are only used when they help."""
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, fleet: FleetInput, prefs: Preferences, flex: Flexibility, **rest: Any) -> Problem:
        """The problem of ``fleet`` with ``prefs``'s costs and reliability and the flexibility
        ``flex`` computed from them; ``rest`` are the other fields (targets, grid, prices, ...)."""
        return cls(
            fleet.der_ids,
            flex,
            prefs.cost_up,
            prefs.cost_down,
            prefs.reliability,
            fleet.feeder,
            fleet.bus,
            **rest,
        )

    def __post_init__(self) -> None:
        n, steps = self.flex.n, self.flex.steps
        for name in ("cost_up", "cost_down", "reliability", "feeder", "bus"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},)")
        for t in self.targets:
            if t.members.shape != (n,) or t.value_w.shape != (steps,):
                raise ValueError(f"target {t.objective_id} does not match the fleet and horizon")
        if self.grid is not None and np.any(self.bus >= self.grid.n_bus):
            raise ValueError("a DER's bus is outside the grid model")
        if self.prices is not None and self.prices.shape != (steps,):
            raise ValueError(f"prices must have shape ({steps},)")

    @property
    def n(self) -> int:
        return self.flex.n

    @property
    def steps(self) -> int:
        return self.flex.steps
