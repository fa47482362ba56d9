"""Turning operator objectives (``derms.core.Objective``) into optimizer targets.

* capacity target: members' net injection change >= ``target_w`` while active;
* peak reduction: members' net import <= ``target_w``, i.e. a change >= import - target;
* reserve: members' remaining upward headroom >= ``target_w``;
* voltage support: the voltage rows of the area's feeders get the objective's band;
* arbitrage: ``prices`` per interval value the members' net injection.

When several objectives of the same kind overlap, each keeps its own row; ``priority`` (lower
wins) sets the shortfall penalty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from derms.core.objectives import AreaLevel, Objective, ObjectiveKind
from derms.orchestration.grid import GridConstraints
from derms.orchestration.inputs import FleetInput
from derms.orchestration.problem import Sense, Target


@dataclass(frozen=True, slots=True)
class Areas:
    """How area ids map onto the fleet: feeder ids in feeder-index order, substation of each feeder."""

    feeder_ids: tuple[str, ...]
    substation_of_feeder: dict[str, str] = field(default_factory=dict)
    feeder_of_row: np.ndarray | None = None
    """Feeder index of each grid row (for voltage support)."""

    def members(self, obj: Objective, fleet: FleetInput) -> np.ndarray:
        level, ids = obj.area.level, set(obj.area.ids)
        if level is AreaLevel.SYSTEM:
            return np.ones(fleet.n, bool)
        if level is AreaLevel.GROUP:
            return np.array([d in ids for d in fleet.der_ids], bool)
        idx = self.feeder_indices(level, ids)
        return np.isin(fleet.feeder, idx)

    def feeder_indices(self, level: AreaLevel, ids: set[str]) -> np.ndarray:
        if level is AreaLevel.FEEDER:
            unknown = ids - set(self.feeder_ids)
            chosen = [i for i, f in enumerate(self.feeder_ids) if f in ids]
        else:
            unknown = ids - set(self.substation_of_feeder.values())
            chosen = [i for i, f in enumerate(self.feeder_ids) if self.substation_of_feeder.get(f) in ids]
        if unknown:
            raise ValueError(f"unknown {level} ids: {sorted(unknown)}")
        return np.array(chosen, np.int32)


@dataclass(frozen=True, slots=True, eq=False)
class Translated:
    targets: tuple[Target, ...]
    prices: np.ndarray | None
    price_members: np.ndarray | None
    grid: GridConstraints | None


def step_mask(obj: Objective, start: datetime, dt_s: float, steps: int) -> np.ndarray:
    """True in the steps that overlap the objective's active window."""
    t0 = np.array([start + timedelta(seconds=dt_s * k) for k in range(steps)])
    t1 = t0 + timedelta(seconds=dt_s)
    return np.array([a < obj.end and b > obj.start for a, b in zip(t0, t1, strict=True)])


def translate(
    objectives: Sequence[Objective],
    fleet: FleetInput,
    areas: Areas,
    *,
    start: datetime,
    dt_s: float,
    steps: int,
    area_import_w: dict[str, np.ndarray] | None = None,
    grid: GridConstraints | None = None,
) -> Translated:
    """Targets, prices and grid band for the objectives active in ``[start, start + steps*dt)``.

    ``area_import_w`` gives, per peak-reduction objective id, the area's forecast net import
    per step [W] at the baseline.
    """
    targets: list[Target] = []
    prices = None
    price_members = None
    for obj in sorted(objectives, key=lambda o: o.priority):
        active = step_mask(obj, start, dt_s, steps)
        if not active.any():
            continue
        members = areas.members(obj, fleet)
        if obj.kind is ObjectiveKind.CAPACITY_TARGET:
            value = np.where(active, float(obj.target_w or 0.0), np.nan)
            targets.append(Target(obj.id, members, value, Sense.DELIVER, obj.priority))
        elif obj.kind is ObjectiveKind.PEAK_REDUCTION:
            imports = (area_import_w or {}).get(obj.id)
            if imports is None or np.shape(imports) != (steps,):
                raise ValueError(
                    f"peak reduction {obj.id} needs the area's import forecast for {steps} steps"
                )
            need = np.maximum(np.asarray(imports, float) - float(obj.target_w or 0.0), 0.0)
            targets.append(
                Target(obj.id, members, np.where(active, need, np.nan), Sense.DELIVER, obj.priority)
            )
        elif obj.kind is ObjectiveKind.RESERVE:
            value = np.where(active, float(obj.target_w or 0.0), np.nan)
            targets.append(Target(obj.id, members, value, Sense.RESERVE, obj.priority))
        elif obj.kind is ObjectiveKind.ARBITRAGE:
            # prices[k] applies to the k-th interval of dt_s after the objective's start.
            offset = np.array([(start - obj.start).total_seconds() / dt_s + s for s in range(steps)])
            index = np.clip(np.floor(offset).astype(int), 0, len(obj.prices) - 1)
            series = np.where(active, np.asarray(obj.prices, float)[index], 0.0)
            prices = series if prices is None else prices + series
            price_members = members if price_members is None else price_members | members
        elif obj.kind is ObjectiveKind.VOLTAGE_SUPPORT and grid is not None:
            rows = None
            if obj.area.level is not AreaLevel.SYSTEM and areas.feeder_of_row is not None:
                feeders = areas.feeder_indices(obj.area.level, set(obj.area.ids))
                rows = np.flatnonzero(np.isin(areas.feeder_of_row, feeders))
            grid = grid.with_voltage_band(obj.v_min_pu, obj.v_max_pu, rows)
    return Translated(tuple(targets), prices, price_members, grid)
