"""Operator objectives: what the orchestrator is asked to achieve, where and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from derms.core.clock import utc


class ObjectiveKind(StrEnum):
    PEAK_REDUCTION = "peak_reduction"
    """Keep feeder or substation net load at or below ``target_w`` of import."""
    CAPACITY_TARGET = "capacity_target"
    """Deliver ``target_w`` of net change (OpenADR event, market award, operator request)."""
    VOLTAGE_SUPPORT = "voltage_support"
    """Hold bus voltages within the band using watts and vars."""
    RESERVE = "reserve"
    """Hold ``target_w`` of upward headroom available, not dispatched."""
    ARBITRAGE = "arbitrage"
    """Shift storage energy against ``prices`` (currency/kWh per interval)."""


class AreaLevel(StrEnum):
    SYSTEM = "system"
    SUBSTATION = "substation"
    FEEDER = "feeder"
    GROUP = "group"
    """An explicit list of DERs."""


@dataclass(frozen=True, slots=True)
class Area:
    """Where an objective applies. ``ids`` names the substations, feeders or DERs at that level."""

    level: AreaLevel = AreaLevel.SYSTEM
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.level is not AreaLevel.SYSTEM and not self.ids:
            raise ValueError(f"an area at level {self.level} needs ids")


@dataclass(frozen=True, slots=True)
class Objective:
    """An objective with start, duration, priority (lower number wins) and area."""

    id: str
    kind: ObjectiveKind
    start: datetime
    duration: timedelta
    area: Area = field(default_factory=Area)
    priority: int = 100
    target_w: float | None = None
    v_min_pu: float = 0.95
    v_max_pu: float = 1.05
    prices: tuple[float, ...] = ()
    source: str = "operator"
    """Who asked: ``operator``, ``openadr:<event id>``, ``market:<award id>`` ..."""
    tenant_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        if self.duration <= timedelta(0):
            raise ValueError("objective duration must be positive")
        needs_target = (ObjectiveKind.PEAK_REDUCTION, ObjectiveKind.CAPACITY_TARGET, ObjectiveKind.RESERVE)
        if self.kind in needs_target and self.target_w is None:
            raise ValueError(f"a {self.kind} objective needs target_w")
        if self.kind is ObjectiveKind.ARBITRAGE and not self.prices:
            raise ValueError("an arbitrage objective needs prices")
        if not 0 < self.v_min_pu < self.v_max_pu:
            raise ValueError("need 0 < v_min_pu < v_max_pu")

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    def active_at(self, when: datetime) -> bool:
        return self.start <= when < self.end
