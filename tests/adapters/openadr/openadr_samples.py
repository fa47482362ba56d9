"""Sample OpenADR 2.0b objects shared by the tests (importable as a plain module)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from derms.adapters.openadr.oadr20b.model import POWER_REAL_KW, Event, EventSignal, Interval, Target
from derms.adapters.openadr.oadr20b.vocabulary import EventStatus, SignalName, SignalType

T0 = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


def make_event(event_id: str = "ev-1", target: Target | None = None, start: datetime | None = None) -> Event:
    """A two-interval LOAD_DISPATCH setpoint (kW) plus a SIMPLE level, one hour after T0."""
    start = start or T0 + timedelta(hours=1)
    return Event(
        event_id=event_id,
        modification_number=0,
        market_context="http://derms.example/openadr/programs/cni",
        created=T0,
        status=EventStatus.FAR,
        start=start,
        duration=timedelta(minutes=30),
        signals=(
            EventSignal(
                SignalName.LOAD_DISPATCH,
                SignalType.SETPOINT,
                "dispatch",
                (Interval(timedelta(minutes=15), 120.0, 0), Interval(timedelta(minutes=15), 90.0, 1)),
                item=POWER_REAL_KW,
                current_value=0.0,
            ),
            EventSignal(
                SignalName.SIMPLE, SignalType.LEVEL, "simple", (Interval(timedelta(minutes=30), 2.0),)
            ),
        ),
        target=target or Target(),
        priority=1,
        notification=timedelta(minutes=30),
        ramp_up=timedelta(minutes=5),
        recovery=timedelta(minutes=5),
        start_after=timedelta(minutes=2),
        vtn_comment="shed to setpoint",
    )
