"""Dispatch plans, setpoints, the reasons behind them, and command states."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from derms.core.clock import utc
from derms.core.controls import Control


class CommandState(StrEnum):
    """Life cycle of a command sent to a device."""

    PENDING = "pending"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"

    @property
    def is_final(self) -> bool:
        return self in (
            CommandState.COMPLETED,
            CommandState.FAILED,
            CommandState.CANCELLED,
            CommandState.SUPERSEDED,
        )


ALLOWED_TRANSITIONS: dict[CommandState, frozenset[CommandState]] = {
    CommandState.PENDING: frozenset(
        {CommandState.SENT, CommandState.FAILED, CommandState.CANCELLED, CommandState.SUPERSEDED}
    ),
    CommandState.SENT: frozenset(
        {
            CommandState.ACKNOWLEDGED,
            CommandState.ACTIVE,
            CommandState.COMPLETED,
            CommandState.FAILED,
            CommandState.CANCELLED,
            CommandState.SUPERSEDED,
        }
    ),
    CommandState.ACKNOWLEDGED: frozenset(
        {
            CommandState.ACTIVE,
            CommandState.COMPLETED,
            CommandState.FAILED,
            CommandState.CANCELLED,
            CommandState.SUPERSEDED,
        }
    ),
    CommandState.ACTIVE: frozenset(
        {CommandState.COMPLETED, CommandState.FAILED, CommandState.CANCELLED, CommandState.SUPERSEDED}
    ),
}


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a setpoint has its value: the objective it serves and what bounds it.

    ``binding`` names the constraint that stopped it going further, e.g.
    ``"device:w_max"``, ``"soc_min"``, ``"line:12 thermal"``, ``"bus:34 v_max"``,
    ``"customer:opt_out"``, ``"warranty:daily_cycles"``, or ``""`` if none bound.
    """

    objective_id: str | None
    binding: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Setpoint:
    """One device-level instruction over ``[start, end)``."""

    der_id: str
    control: Control
    start: datetime
    end: datetime
    reason: Reason = field(default_factory=lambda: Reason(None))

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))
        if self.end <= self.start:
            raise ValueError("setpoint end must be after start")


@dataclass(frozen=True, slots=True)
class DispatchPlan:
    """The orchestrator's output for a set of objectives.

    ``inputs_digest`` identifies the recorded inputs the plan was computed from, so that the
    plan can be reproduced exactly (replay).
    """

    id: str
    created_at: datetime
    setpoints: tuple[Setpoint, ...]
    objective_ids: tuple[str, ...] = ()
    solver: str = ""
    inputs_digest: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", utc(self.created_at))
