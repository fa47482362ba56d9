"""OpenADR 3.0.1 objects (``components/schemas`` of ``openadr3.yaml`` 3.0.1).

Field names are the specification's (camelCase on the wire). Objects carry the VTN-provisioned
``id``, ``createdDateTime``, ``modificationDateTime`` and ``objectType``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

DURATION = re.compile(
    r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
"""``components/schemas/duration`` pattern (ISO 8601 duration)."""


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration without years or months (``ValueError`` otherwise, e.g. ``P9999Y``)."""
    m = DURATION.match(text)
    if not m:
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    sign, years, months, n, unit, hours, minutes, seconds = m.groups()
    if years or months:
        raise ValueError(f"calendar duration {text!r} has no fixed length")
    days = int(n or 0) * (7 if unit == "W" else 1)
    value = timedelta(
        days=days, hours=int(hours or 0), minutes=int(minutes or 0), seconds=float(seconds or 0)
    )
    return -value if sign == "-" else value


def _duration(value: str) -> str:
    if not DURATION.match(value):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
ObjectId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=128)]
ObjectType = Literal["PROGRAM", "EVENT", "REPORT", "SUBSCRIPTION", "VEN", "RESOURCE"]


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, object]:
        """JSON-ready dict with the wire names; absent optional fields are omitted (their default is null)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Point(Wire):
    x: float
    y: float


class ValuesMap(Wire):
    type: Name
    values: list[float | int | bool | str | Point]


class IntervalPeriod(Wire):
    start: datetime
    duration: Duration | None = None
    randomize_start: Duration | None = None


class Interval(Wire):
    id: int
    interval_period: IntervalPeriod | None = None
    payloads: list[ValuesMap]


class EventPayloadDescriptor(Wire):
    object_type: Literal["EVENT_PAYLOAD_DESCRIPTOR"] = "EVENT_PAYLOAD_DESCRIPTOR"
    payload_type: Name
    units: str | None = None
    currency: str | None = None


class ReportPayloadDescriptor(Wire):
    object_type: Literal["REPORT_PAYLOAD_DESCRIPTOR"] = "REPORT_PAYLOAD_DESCRIPTOR"
    payload_type: Name
    reading_type: str | None = None
    units: str | None = None
    accuracy: float | None = None
    confidence: int | None = Field(None, ge=0, le=100)


class ReportDescriptor(Wire):
    payload_type: Name
    reading_type: str | None = None
    units: str | None = None
    targets: list[ValuesMap] | None = None
    aggregate: bool = False
    start_interval: int = -1
    num_intervals: int = -1
    historical: bool = True
    frequency: int = -1
    repeat: int = 1


class Stored(Wire):
    """VTN-provisioned fields common to all top-level objects."""

    id: ObjectId | None = None
    created_date_time: datetime | None = None
    modification_date_time: datetime | None = None


class ProgramDescription(Wire):
    url: str = Field(alias="URL")


class Program(Stored):
    object_type: Literal["PROGRAM"] = "PROGRAM"
    program_name: Name
    program_long_name: str | None = None
    retailer_name: str | None = None
    retailer_long_name: str | None = None
    program_type: str | None = None
    country: str | None = None
    principal_subdivision: str | None = None
    time_zone_offset: Duration | None = None
    interval_period: IntervalPeriod | None = None
    program_descriptions: list[ProgramDescription] | None = None
    binding_events: bool | None = None
    local_price: bool | None = None
    payload_descriptors: list[EventPayloadDescriptor | ReportPayloadDescriptor] | None = None
    targets: list[ValuesMap] | None = None


class Event(Stored):
    object_type: Literal["EVENT"] = "EVENT"
    program_id: ObjectId = Field(alias="programID")
    event_name: str | None = None
    priority: int | None = Field(None, ge=0)
    targets: list[ValuesMap] | None = None
    report_descriptors: list[ReportDescriptor] | None = None
    payload_descriptors: list[EventPayloadDescriptor] | None = None
    interval_period: IntervalPeriod | None = None
    intervals: list[Interval]


class ReportResource(Wire):
    resource_name: Name
    interval_period: IntervalPeriod | None = None
    intervals: list[Interval]


class Report(Stored):
    object_type: Literal["REPORT"] = "REPORT"
    program_id: ObjectId = Field(alias="programID")
    event_id: ObjectId = Field(alias="eventID")
    client_name: Name
    report_name: str | None = None
    payload_descriptors: list[ReportPayloadDescriptor] | None = None
    resources: list[ReportResource]


class ObjectOperation(Wire):
    objects: list[ObjectType] = Field(min_length=1)
    operations: list[Literal["READ", "CREATE", "UPDATE", "DELETE", "GET", "POST", "PUT"]] = Field(
        min_length=1
    )
    """3.0.1 names READ/CREATE/UPDATE/DELETE; 3.0.0 and some 3.0.x clients (toadr3) send the HTTP
    verbs GET/POST/PUT/DELETE. Both are accepted and echoed back as sent."""
    callback_url: Annotated[str, Field(pattern=r"^https?://")]
    bearer_token: str | None = None


class Subscription(Stored):
    object_type: Literal["SUBSCRIPTION"] = "SUBSCRIPTION"
    client_name: Name
    program_id: ObjectId = Field(alias="programID")
    object_operations: list[ObjectOperation] = Field(min_length=1)
    targets: list[ValuesMap] | None = None


class Resource(Stored):
    object_type: Literal["RESOURCE"] = "RESOURCE"
    resource_name: Name
    ven_id: ObjectId | None = Field(None, alias="venID")
    attributes: list[ValuesMap] | None = None
    targets: list[ValuesMap] | None = None


class Ven(Stored):
    object_type: Literal["VEN"] = "VEN"
    ven_name: Name
    attributes: list[ValuesMap] | None = None
    targets: list[ValuesMap] | None = None
    resources: list[Resource] | None = None


class Notification(Wire):
    object_type: ObjectType
    operation: Literal["GET", "POST", "PUT", "DELETE"]
    object: dict[str, object]
    targets: list[ValuesMap] | None = None


MODELS: dict[str, type[Stored]] = {
    "PROGRAM": Program,
    "EVENT": Event,
    "REPORT": Report,
    "SUBSCRIPTION": Subscription,
    "VEN": Ven,
    "RESOURCE": Resource,
}
