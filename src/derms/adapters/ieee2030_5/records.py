"""Server-side records of 2030.5 resources (what the repository keeps).

Control values are kept as the typed ``DERControlBase`` they are published as, so a control
round-trips exactly; everything else is plain data. Times are POSIX seconds (2030.5 TimeType).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy_schema.server.schema.sep2.der import (
    DERAvailability,
    DERControlBase,
    DERSettings,
    DERStatus,
)

from derms.adapters.ieee2030_5.schema import DERCapability


@dataclass(slots=True)
class EndDeviceRecord:
    """An EndDevice (2030.5-2018 9.4.2) and the one DER behind it."""

    id: int
    lfdi: str
    sfdi: int
    tenant_id: str
    changed_time: int
    pin: int
    registered_time: int
    device_category: str | None = None
    enabled: bool = True
    is_aggregator: bool = False
    aggregator_id: int | None = None
    der_id: str | None = None
    post_rate: int = 60
    capability: DERCapability | None = None
    settings: DERSettings | None = None
    status: DERStatus | None = None
    availability: DERAvailability | None = None


@dataclass(slots=True)
class DefaultControlRecord:
    """DefaultDERControl of one program (2030.5-2018 10.10.4.2)."""

    mrid: str
    base: DERControlBase
    set_es_delay: int | None = None
    set_es_random_delay: int | None = None
    set_grad_w: int | None = None
    set_soft_grad_w: int | None = None
    version: int = 0


@dataclass(slots=True)
class ProgramRecord:
    """A DERProgram (2030.5-2018 10.10.4.1). ``edev_ids`` None means every device of the tenant."""

    id: int
    mrid: str
    tenant_id: str
    description: str
    primacy: int
    edev_ids: frozenset[int] | None = None
    default: DefaultControlRecord | None = None
    version: int = 0


@dataclass(slots=True)
class ControlRecord:
    """A DERControl event (2030.5-2018 10.10.4.2, 12.1.3 event rules)."""

    id: int
    program_id: int
    mrid: str
    description: str
    creation_time: int
    start: int
    duration: int
    base: DERControlBase
    randomize_start: int | None = None
    randomize_duration: int | None = None
    cancelled_time: int | None = None
    cancel_randomized: bool = False
    command_id: str | None = None
    der_id: str | None = None
    version: int = 0

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(slots=True)
class CurvePoint:
    x: int
    y: int
    excitation: bool | None = None


@dataclass(slots=True)
class CurveRecord:
    """A DERCurve (2030.5-2018 10.10.4.3) in its program's curve list."""

    id: int
    program_id: int
    mrid: str
    description: str
    creation_time: int
    curve_type: int
    points: tuple[CurvePoint, ...]
    x_multiplier: int
    y_multiplier: int
    y_ref_type: int
    open_loop_tms: int | None = None
    v_ref: int | None = None


@dataclass(slots=True)
class ReadingRecord:
    """One MirrorMeterReading series with its ReadingType (2030.5-2018 10.5)."""

    id: int
    mrid: str
    description: str
    uom: int | None
    power_of_ten: int
    flow_direction: int | None
    kind: int | None
    phase: int | None
    last_value: float | None = None
    last_time: int | None = None


@dataclass(slots=True)
class MirrorUsagePointRecord:
    """A MirrorUsagePoint (2030.5-2018 10.5.4.2) owned by one EndDevice."""

    id: int
    edev_id: int
    mrid: str
    description: str
    device_lfdi: str
    role_flags: str
    service_category: int
    status: int
    readings: dict[str, ReadingRecord] = field(default_factory=dict)


@dataclass(slots=True)
class ResponseRecord:
    """A Response to an event (2030.5-2018 9.6)."""

    id: int
    edev_id: int
    subject: str
    status: int
    created: int


@dataclass(slots=True)
class LogEventRecord:
    id: int
    edev_id: int
    created: int
    code: int
    log_id: int
    pen: int
    function_set: int
    profile_id: int
    details: str | None = None


@dataclass(slots=True)
class SubscriptionRecord:
    """A Subscription (2030.5-2018 9.5): where to notify, for which resource."""

    id: int
    edev_id: int
    resource: str
    notification_uri: str
    limit: int
    encoding: int = 0
    level: str = "+S1"
