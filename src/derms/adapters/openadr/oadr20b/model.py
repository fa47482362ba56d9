"""Typed OpenADR 2.0b objects (events, signals, targets, reports, opts).

Field names follow the specification's element names so that the vocabulary survives end to
end: a signal stays a ``(signalName, signalType, itemBase)`` triple, a target keeps its
resource, group, party and VEN ids, a report keeps its rID, reportType and readingType.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from derms.adapters.openadr.oadr20b.vocabulary import (
    VALID_SIGNAL_TYPES,
    EventStatus,
    OptReason,
    OptType,
    ReadingType,
    ReportName,
    ReportType,
    ResponseRequired,
    SignalName,
    SignalType,
)
from derms.core.clock import utc


@dataclass(frozen=True, slots=True)
class Target:
    """``ei:eiTarget``: who an event, opt or report is for (2.0b section 8.3)."""

    group_ids: tuple[str, ...] = ()
    group_names: tuple[str, ...] = ()
    resource_ids: tuple[str, ...] = ()
    ven_ids: tuple[str, ...] = ()
    party_ids: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.group_ids or self.group_names or self.resource_ids or self.ven_ids or self.party_ids)


@dataclass(frozen=True, slots=True)
class ItemBase:
    """``emix:itemBase`` substitute describing a signal's or report's unit.

    ``element`` is the qualified element name, e.g. ``power:powerReal`` (units ``W``),
    ``power:energyReal`` (``Wh``), ``oadr:currencyPerKWh`` (``USD``), ``power:voltage``.
    """

    element: str
    description: str
    units: str
    scale: str = "none"
    hertz: float | None = None
    voltage: float | None = None
    ac: bool | None = None


POWER_REAL_KW = ItemBase("power:powerReal", "RealPower", "W", "k", hertz=60.0, voltage=480.0, ac=True)
"""Real power in kW: the unit LOAD_DISPATCH setpoints and telemetry use in this adapter."""


@dataclass(frozen=True, slots=True)
class Interval:
    """One ``ei:interval`` of an event signal: a duration and its payload value."""

    duration: timedelta
    value: float
    uid: int = 0


@dataclass(frozen=True, slots=True)
class EventSignal:
    name: SignalName
    type: SignalType
    signal_id: str
    intervals: tuple[Interval, ...]
    item: ItemBase | None = None
    current_value: float | None = None
    target: Target | None = None

    def __post_init__(self) -> None:
        if self.type not in VALID_SIGNAL_TYPES[self.name]:
            raise ValueError(f"signalType {self.type} is not allowed for signalName {self.name}")
        if not self.intervals:
            raise ValueError("an event signal needs at least one interval")
        if self.name is SignalName.SIMPLE and any(i.value not in (0, 1, 2, 3) for i in self.intervals):
            raise ValueError("SIMPLE signal levels are 0, 1, 2 or 3")

    def value_at(self, offset: timedelta) -> float | None:
        """The interval value in force ``offset`` after the event start, or ``None`` outside."""
        t = timedelta(0)
        for interval in self.intervals:
            if t <= offset < t + interval.duration:
                return interval.value
            t += interval.duration
        return None


@dataclass(frozen=True, slots=True)
class Event:
    """``ei:eiEvent`` with its ``oadrResponseRequired`` flag (2.0b section 8)."""

    event_id: str
    modification_number: int
    market_context: str
    created: datetime
    status: EventStatus
    start: datetime
    duration: timedelta
    signals: tuple[EventSignal, ...]
    target: Target = field(default_factory=Target)
    priority: int = 0
    response_required: ResponseRequired = ResponseRequired.ALWAYS
    test_event: bool = False
    vtn_comment: str | None = None
    modification_reason: str | None = None
    modification_date_time: datetime | None = None
    start_after: timedelta | None = None
    notification: timedelta | None = None
    ramp_up: timedelta | None = None
    recovery: timedelta | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "created", utc(self.created))
        object.__setattr__(self, "start", utc(self.start))
        if not self.signals:
            raise ValueError("an event needs at least one signal")
        if self.modification_number < 0 or self.priority < 0:
            raise ValueError("modificationNumber and priority are unsigned")
        if len({s.signal_id for s in self.signals}) != len(self.signals):
            raise ValueError("signalIDs must be unique within an event")

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    def status_at(self, now: datetime) -> EventStatus:
        """far/near/active/completed from the clock (2.0b 8.1); cancelled stays cancelled."""
        if self.status is EventStatus.CANCELLED:
            return self.status
        if now >= self.end and self.duration > timedelta(0):
            return EventStatus.COMPLETED
        if now >= self.start:
            return EventStatus.ACTIVE
        if self.notification is not None and now >= self.start - self.notification:
            return EventStatus.NEAR
        return EventStatus.FAR

    def modified(self, **changes: object) -> Event:
        """A copy with ``modificationNumber`` incremented (2.0b 8.2.2)."""
        return replace(self, modification_number=self.modification_number + 1, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class EventResponse:
    """One ``ei:eventResponse`` inside ``oadrCreatedEvent``: a VEN's opt for an event version."""

    event_id: str
    modification_number: int
    opt_type: OptType
    response_code: int = 200
    response_description: str = "OK"
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class ReportDescription:
    """``oadrReportDescription``: one data point a VEN can report (2.0b 9.2)."""

    r_id: str
    report_type: ReportType
    reading_type: ReadingType
    resource_id: str | None = None
    item: ItemBase | None = None
    min_period: timedelta | None = None
    max_period: timedelta | None = None
    on_change: bool = False
    market_context: str | None = None


@dataclass(frozen=True, slots=True)
class ReportValue:
    """One ``ei:interval`` of a report: a value of data point ``r_id`` at ``dtstart``."""

    r_id: str
    dtstart: datetime
    value: float
    duration: timedelta | None = None
    confidence: int | None = None
    accuracy: float | None = None
    data_quality: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """``oadrReport``: metadata (register) or data (update) of one report specifier."""

    report_specifier_id: str
    report_name: str
    created: datetime
    report_request_id: str = "0"
    report_id: str | None = None
    descriptions: tuple[ReportDescription, ...] = ()
    values: tuple[ReportValue, ...] = ()
    dtstart: datetime | None = None
    duration: timedelta | None = None

    @property
    def is_metadata(self) -> bool:
        return self.report_name.startswith("METADATA")


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """``oadrReportRequest``: the VTN asks for data points of a registered report (2.0b 9.3)."""

    report_request_id: str
    report_specifier_id: str
    granularity: timedelta
    report_back_duration: timedelta
    points: tuple[tuple[str, ReadingType], ...]
    interval_start: datetime | None = None
    interval_duration: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Availability:
    """One ``xcal:available`` window of an opt schedule."""

    start: datetime
    duration: timedelta


@dataclass(frozen=True, slots=True)
class Opt:
    """``oadrCreateOpt``: an opt-in/out for one event or an availability schedule (2.0b 10)."""

    opt_id: str
    opt_type: OptType
    opt_reason: OptReason
    ven_id: str
    created: datetime
    target: Target = field(default_factory=Target)
    market_context: str | None = None
    event_id: str | None = None
    modification_number: int | None = None
    availability: tuple[Availability, ...] = ()

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether a schedule opt overlaps ``[start, end)``."""
        return any(a.start < end and start < a.start + a.duration for a in self.availability)


@dataclass(frozen=True, slots=True)
class Registration:
    """``oadrCreatePartyRegistration`` content as the VTN keeps it."""

    ven_name: str
    profile_name: str
    transport_name: str
    report_only: bool
    xml_signature: bool
    http_pull_model: bool
    transport_address: str | None = None
    ven_id: str | None = None
    registration_id: str | None = None


__all__ = [
    "POWER_REAL_KW",
    "Availability",
    "Event",
    "EventResponse",
    "EventSignal",
    "Interval",
    "ItemBase",
    "Opt",
    "Registration",
    "Report",
    "ReportDescription",
    "ReportName",
    "ReportRequest",
    "ReportValue",
    "Target",
]
