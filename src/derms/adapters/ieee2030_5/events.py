"""Event status rules for DERControls (IEEE 2030.5-2018 clause 12.1.3 and 10.10.3).

Pure functions of control records and a time. Server-side rules:

* a cancelled event keeps its place in the list with ``currentStatus`` 2 (Cancelled), or 3
  (Cancelled with Randomization) when it carried randomization and the cancel asked the
  device to apply it;
* an event is Superseded (4) when a later-created event *in the same program* overlaps it
  in time and controls at least one of the same modes (12.1.3.3; ties on creation time go
  to the larger mRID);
* across programs the server cannot decide (the device applies primacy), so it sets
  ``potentiallySuperseded`` when an overlapping event of another program assigned to the
  same device shares a mode;
* otherwise the event is Active (1) inside ``[start, start + duration)`` and Scheduled (0)
  before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from envoy_schema.server.schema.sep2.der import DERControlBase

from derms.adapters.ieee2030_5.records import ControlRecord


class EventStatusCode(IntEnum):
    """EventStatus.currentStatus (2030.5-2018 EventStatus)."""

    SCHEDULED = 0
    ACTIVE = 1
    CANCELLED = 2
    CANCELLED_WITH_RANDOMIZATION = 3
    SUPERSEDED = 4


@dataclass(frozen=True, slots=True)
class EventState:
    status: EventStatusCode
    changed: int
    potentially_superseded: bool
    potentially_superseded_time: int | None = None


def modes(base: DERControlBase) -> frozenset[str]:
    """The opMod* fields a control sets (only fields given at construction can be set)."""
    return frozenset(
        name for name in base.model_fields_set if name.startswith("opMod") and getattr(base, name) is not None
    )


def overlaps(a: ControlRecord, b: ControlRecord) -> bool:
    return a.start < b.end and b.start < a.end


def supersedes(newer: ControlRecord, older: ControlRecord) -> bool:
    """Whether ``newer`` supersedes ``older`` inside one program (12.1.3.3)."""
    if newer.id == older.id or newer.cancelled_time is not None:
        return False
    if (newer.creation_time, newer.mrid) <= (older.creation_time, older.mrid):
        return False
    return overlaps(newer, older) and bool(modes(newer.base) & modes(older.base))


def superseded_by(control: ControlRecord, same_program: Iterable[ControlRecord]) -> ControlRecord | None:
    """The first event of the same program that supersedes ``control``, if any."""
    for other in same_program:
        if supersedes(other, control):
            return other
    return None


def event_state(
    control: ControlRecord,
    now: int,
    same_program: Iterable[ControlRecord],
    other_programs: Iterable[ControlRecord] = (),
) -> EventState:
    """Status of ``control`` at ``now`` given its program's and other programs' events."""
    if control.cancelled_time is not None:
        randomized = control.cancel_randomized and bool(control.randomize_start or control.randomize_duration)
        code = EventStatusCode.CANCELLED_WITH_RANDOMIZATION if randomized else EventStatusCode.CANCELLED
        return EventState(code, control.cancelled_time, False)
    winner = superseded_by(control, same_program)
    if winner is not None:
        return EventState(EventStatusCode.SUPERSEDED, winner.creation_time, False)
    rivals = [
        o
        for o in other_programs
        if o.cancelled_time is None and overlaps(o, control) and modes(o.base) & modes(control.base)
    ]
    potential_time = min((o.creation_time for o in rivals), default=None)
    if control.start <= now < control.end:
        return EventState(EventStatusCode.ACTIVE, control.start, bool(rivals), potential_time)
    return EventState(EventStatusCode.SCHEDULED, control.creation_time, bool(rivals), potential_time)


def list_order(controls: Iterable[ControlRecord]) -> list[ControlRecord]:
    """DERControlList order (2030.5-2018 Annex: start ascending, creationTime descending, mRID descending)."""
    ordered = sorted(controls, key=lambda c: c.mrid, reverse=True)
    ordered.sort(key=lambda c: c.creation_time, reverse=True)
    ordered.sort(key=lambda c: c.start)
    return ordered
