"""Pure mappings from repository records to typed 2030.5 resources (and back).

Unit quirks named where they occur: percentages are hundredths of a percent
(2030.5 PerCent/SignedPerCent), powers are value × 10^multiplier, times are POSIX seconds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TypeVar

from envoy_schema.server.schema.sep2.der import (
    DER,
    DefaultDERControl,
    DERControlBase,
    DERControlListResponse,
    DERControlResponse,
    DERListResponse,
    DERProgramListResponse,
    DERProgramResponse,
)
from envoy_schema.server.schema.sep2.device_capability import DeviceCapabilityResponse
from envoy_schema.server.schema.sep2.end_device import (
    EndDeviceListResponse,
    EndDeviceResponse,
    RegistrationResponse,
)
from envoy_schema.server.schema.sep2.event import EventStatus
from envoy_schema.server.schema.sep2.function_set_assignments import (
    FunctionSetAssignmentsListResponse,
    FunctionSetAssignmentsResponse,
)
from envoy_schema.server.schema.sep2.identification import Link, ListLink
from envoy_schema.server.schema.sep2.log_events import LogEvent, LogEventList
from envoy_schema.server.schema.sep2.metering import Reading, ReadingType
from envoy_schema.server.schema.sep2.metering_mirror import (
    MirrorMeterReading,
    MirrorUsagePoint,
    MirrorUsagePointListResponse,
)
from envoy_schema.server.schema.sep2.pub_sub import Subscription, SubscriptionListResponse
from envoy_schema.server.schema.sep2.response import (
    Response,
    ResponseListResponse,
    ResponseSet,
    ResponseSetList,
)
from envoy_schema.server.schema.sep2.time import TimeResponse
from envoy_schema.server.schema.sep2.types import DateTimeIntervalType, TimeQualityType

from derms.adapters.ieee2030_5 import hrefs
from derms.adapters.ieee2030_5.events import EventState
from derms.adapters.ieee2030_5.records import (
    ControlRecord,
    CurveRecord,
    EndDeviceRecord,
    LogEventRecord,
    MirrorUsagePointRecord,
    ProgramRecord,
    ResponseRecord,
    SubscriptionRecord,
)
from derms.adapters.ieee2030_5.schema import CurvePointXml, DERCurveList, DERCurveXml

T = TypeVar("T")

MIN_MULTIPLIER, MAX_MULTIPLIER = -9, 9
"""PowerOfTenMultiplierType: any integer in [-9, 9] (2030.5-2018 PowerOfTenMultiplierType)."""


def make_mrid(kind: str, ident: object, pen: int) -> str:
    """A 128-bit mRID: 96 bits of hash, then the 32-bit IANA PEN (2030.5-2018 6.3.2.1)."""
    digest = hashlib.sha256(f"{kind}:{ident}".encode()).hexdigest()[:24].upper()
    return f"{digest}{pen:08X}"


def page[T](items: Sequence[T], start: int, limit: int) -> list[T]:
    """List paging (2030.5-2018 4.2.1: ``s`` start index, ``l`` limit)."""
    return list(items[start : start + limit])


def scaled(value: int, multiplier: int) -> float:
    """value × 10^multiplier; raises ``ValueError`` outside the permitted multiplier range."""
    if not MIN_MULTIPLIER <= multiplier <= MAX_MULTIPLIER:
        raise ValueError(f"power-of-ten multiplier {multiplier} outside [-9, 9]")
    return value * 10.0**multiplier


def device_capability(poll_rate: int, edev_count: int, mup_count: int) -> DeviceCapabilityResponse:
    return DeviceCapabilityResponse(
        href=hrefs.DCAP,
        pollRate=poll_rate,
        TimeLink=Link(href=hrefs.TIME),
        EndDeviceListLink=ListLink(href=hrefs.EDEV_LIST, all_=edev_count),
        MirrorUsagePointListLink=ListLink(href=hrefs.MUP_LIST, all_=mup_count),
        ResponseSetListLink=ListLink(href=hrefs.RSPS_LIST, all_=1),
    )


def time_resource(now: int) -> TimeResponse:
    """Time (2030.5-2018 10.1): UTC, no DST, quality 'intentionally uncoordinated' (7)."""
    return TimeResponse(
        href=hrefs.TIME,
        currentTime=now,
        dstEndTime=0,
        dstOffset=0,
        dstStartTime=0,
        localTime=now,
        quality=TimeQualityType.intentionally_uncoordinated,
        tzOffset=0,
    )


def end_device(edev: EndDeviceRecord, n_programs: int, n_subs: int, n_logs: int) -> EndDeviceResponse:
    e = edev.id
    return EndDeviceResponse(
        href=hrefs.edev(e),
        subscribable=1,
        lFDI=edev.lfdi,
        sFDI=edev.sfdi,
        deviceCategory=edev.device_category,
        changedTime=edev.changed_time,
        enabled=edev.enabled,
        postRate=edev.post_rate,
        DERListLink=ListLink(href=hrefs.der_list(e), all_=1),
        FunctionSetAssignmentsListLink=ListLink(href=hrefs.fsa_list(e), all_=1 if n_programs else 0),
        LogEventListLink=ListLink(href=hrefs.lel(e), all_=n_logs),
        RegistrationLink=Link(href=hrefs.reg(e)),
        SubscriptionListLink=ListLink(href=hrefs.sub_list(e), all_=n_subs),
    )


def end_device_list(items: list[EndDeviceResponse], total: int, poll_rate: int) -> EndDeviceListResponse:
    return EndDeviceListResponse(
        href=hrefs.EDEV_LIST,
        subscribable=1,
        all_=total,
        results=len(items),
        pollRate=poll_rate,
        EndDevice=items,
    )


def registration(edev: EndDeviceRecord, poll_rate: int) -> RegistrationResponse:
    return RegistrationResponse(
        href=hrefs.reg(edev.id), pollRate=poll_rate, dateTimeRegistered=edev.registered_time, pIN=edev.pin
    )


def function_set_assignments(
    edev: EndDeviceRecord, n_programs: int, pen: int
) -> FunctionSetAssignmentsResponse:
    return FunctionSetAssignmentsResponse(
        href=hrefs.fsa(edev.id),
        mRID=make_mrid("fsa", edev.id, pen),
        description="DER programs",
        DERProgramListLink=ListLink(href=hrefs.derp_list(edev.id), all_=n_programs),
        TimeLink=Link(href=hrefs.TIME),
    )


def fsa_list(
    edev: EndDeviceRecord, items: list[FunctionSetAssignmentsResponse], total: int, poll_rate: int
) -> FunctionSetAssignmentsListResponse:
    return FunctionSetAssignmentsListResponse(
        href=hrefs.fsa_list(edev.id),
        subscribable=1,
        all_=total,
        results=len(items),
        pollRate=poll_rate,
        FunctionSetAssignments=items,
    )


def program(
    edev_id: int, record: ProgramRecord, n_controls: int, n_active: int, n_curves: int
) -> DERProgramResponse:
    p = record.id
    return DERProgramResponse(
        href=hrefs.derp(edev_id, p),
        subscribable=1,
        mRID=record.mrid,
        description=record.description,
        version=record.version,
        ActiveDERControlListLink=ListLink(href=hrefs.actderc(edev_id, p), all_=n_active),
        DefaultDERControlLink=Link(href=hrefs.dderc(edev_id, p)) if record.default else None,
        DERControlListLink=ListLink(href=hrefs.derc_list(edev_id, p), all_=n_controls),
        DERCurveListLink=ListLink(href=hrefs.curve_list(edev_id, p), all_=n_curves),
        primacy=record.primacy,
    )


def program_list(
    edev_id: int, items: list[DERProgramResponse], total: int, poll_rate: int
) -> DERProgramListResponse:
    return DERProgramListResponse(
        href=hrefs.derp_list(edev_id),
        subscribable=1,
        all_=total,
        results=len(items),
        pollRate=poll_rate,
        DERProgram=items,
    )


_EDEV_PREFIX = re.compile(r"^/edev/\d+/")


def localised(base: DERControlBase, edev_id: int) -> DERControlBase:
    """``base`` with curve links pointing into ``edev_id``'s own path (a program and its curves
    are shared by its devices, but each device reads them under its own EndDevice)."""
    updates = {
        name: Link(href=_EDEV_PREFIX.sub(f"/edev/{edev_id}/", value.href))
        for name, value in base
        if isinstance(value, Link) and _EDEV_PREFIX.match(value.href)
    }
    return base.model_copy(update=updates) if updates else base


def control(edev_id: int, record: ControlRecord, state: EventState) -> DERControlResponse:
    return DERControlResponse(
        href=hrefs.derc(edev_id, record.program_id, record.id),
        replyTo=hrefs.RESPONSES,
        responseRequired="03",  # bit 0 message received, bit 1 specific response (2030.5 9.6)
        subscribable=0,
        mRID=record.mrid,
        description=record.description,
        version=record.version,
        creationTime=record.creation_time,
        EventStatus_=EventStatus(
            currentStatus=int(state.status),
            dateTime=state.changed,
            potentiallySuperseded=state.potentially_superseded,
            potentiallySupersededTime=state.potentially_superseded_time,
        ),
        interval=DateTimeIntervalType(duration=record.duration, start=record.start),
        randomizeDuration=record.randomize_duration,
        randomizeStart=record.randomize_start,
        DERControlBase_=localised(record.base, edev_id),
    )


def control_list(href: str, items: list[DERControlResponse], total: int) -> DERControlListResponse:
    return DERControlListResponse(href=href, subscribable=1, all_=total, results=len(items), DERControl=items)


def default_control(edev_id: int, record: ProgramRecord) -> DefaultDERControl:
    default = record.default
    assert default is not None
    return DefaultDERControl(
        href=hrefs.dderc(edev_id, record.id),
        subscribable=1,
        mRID=default.mrid,
        description=f"default of {record.description}",
        version=default.version,
        DERControlBase_=localised(default.base, edev_id),
        setESDelay=default.set_es_delay,
        setESRandomDelay=default.set_es_random_delay,
        setGradW=default.set_grad_w,
        setSoftGradW=default.set_soft_grad_w,
    )


def curve(edev_id: int, record: CurveRecord) -> DERCurveXml:
    return DERCurveXml(
        href=hrefs.curve(edev_id, record.program_id, record.id),
        mRID=record.mrid,
        description=record.description,
        creationTime=record.creation_time,
        CurveData=[CurvePointXml(excitation=p.excitation, xvalue=p.x, yvalue=p.y) for p in record.points],
        curveType=record.curve_type,
        openLoopTms=record.open_loop_tms,
        vRef=record.v_ref,
        xMultiplier=record.x_multiplier,
        yMultiplier=record.y_multiplier,
        yRefType=record.y_ref_type,
    )


def curve_list(href: str, items: list[DERCurveXml], total: int) -> DERCurveList:
    return DERCurveList(href=href, all_=total, results=len(items), DERCurve=items)


def der(edev: EndDeviceRecord, first_program: int | None) -> DER:
    e = edev.id
    return DER(
        href=hrefs.der(e),
        AssociatedDERProgramListLink=ListLink(href=hrefs.derp_list(e)),
        CurrentDERProgramLink=Link(href=hrefs.derp(e, first_program)) if first_program is not None else None,
        DERAvailabilityLink=Link(href=hrefs.der_part(e, "dera")),
        DERCapabilityLink=Link(href=hrefs.der_part(e, "dercap")),
        DERSettingsLink=Link(href=hrefs.der_part(e, "derg")),
        DERStatusLink=Link(href=hrefs.der_part(e, "ders")),
    )


def der_list(edev: EndDeviceRecord, items: list[DER], poll_rate: int) -> DERListResponse:
    return DERListResponse(
        href=hrefs.der_list(edev.id), all_=1, results=len(items), pollRate=poll_rate, DER_=items
    )


def reading_type(
    uom: int | None, power_of_ten: int, flow: int | None, kind: int | None, phase: int | None
) -> ReadingType:
    return ReadingType(uom=uom, powerOfTenMultiplier=power_of_ten, flowDirection=flow, kind=kind, phase=phase)


def mup(record: MirrorUsagePointRecord, post_rate: int) -> MirrorUsagePoint:
    readings = [
        MirrorMeterReading(
            mRID=r.mrid,
            description=r.description,
            lastUpdateTime=r.last_time,
            readingType=reading_type(r.uom, r.power_of_ten, r.flow_direction, r.kind, r.phase),
            reading=(
                Reading(value=round(r.last_value / 10.0**r.power_of_ten))
                if r.last_value is not None
                else None
            ),
        )
        for r in record.readings.values()
    ]
    return MirrorUsagePoint(
        href=hrefs.mup(record.id),
        mRID=record.mrid,
        description=record.description,
        roleFlags=record.role_flags,
        serviceCategoryKind=record.service_category,
        status=record.status,
        deviceLFDI=record.device_lfdi,
        mirrorMeterReadings=readings or None,
        postRate=post_rate,
    )


def mup_list(items: list[MirrorUsagePoint], total: int, poll_rate: int) -> MirrorUsagePointListResponse:
    return MirrorUsagePointListResponse(
        href=hrefs.MUP_LIST, all_=total, results=len(items), pollRate=poll_rate, mirrorUsagePoints=items
    )


def response_set(pen: int, n_responses: int) -> ResponseSet:
    """The server's one ResponseSet (2030.5-2018 9.6): where DERControl Responses are posted."""
    return ResponseSet(
        href=hrefs.RESPONSE_SET,
        mRID=make_mrid("rsps", 1, pen),
        description="DER control responses",
        ResponseListLink=ListLink(href=hrefs.RESPONSES, all_=n_responses),
    )


def response_set_list(items: list[ResponseSet], poll_rate: int) -> ResponseSetList:
    return ResponseSetList(
        href=hrefs.RSPS_LIST, all_=1, results=len(items), pollRate=poll_rate, ResponseSet_=items
    )


def response(record: ResponseRecord, lfdi: str) -> Response:
    return Response(
        href=f"{hrefs.RESPONSES}/{record.id}",
        createdDateTime=record.created,
        endDeviceLFDI=lfdi,
        status=record.status,
        subject=record.subject,
    )


def response_list(items: list[Response], total: int) -> ResponseListResponse:
    return ResponseListResponse(href=hrefs.RESPONSES, all_=total, results=len(items), Response_=items)


def log_event(edev_id: int, record: LogEventRecord) -> LogEvent:
    return LogEvent(
        href=f"{hrefs.lel(edev_id)}/{record.id}",
        createdDateTime=record.created,
        details=record.details,
        functionSet=record.function_set,
        logEventCode=record.code,
        logEventID=record.log_id,
        logEventPEN=record.pen,
        profileID=record.profile_id,
    )


def log_event_list(edev_id: int, items: list[LogEvent], total: int, poll_rate: int) -> LogEventList:
    return LogEventList(
        href=hrefs.lel(edev_id),
        subscribable=0,
        all_=total,
        results=len(items),
        pollRate=poll_rate,
        LogEvent_=items,
    )


def subscription(record: SubscriptionRecord) -> Subscription:
    return Subscription(
        href=hrefs.sub(record.edev_id, record.id),
        subscribedResource=record.resource,
        encoding=record.encoding,
        level=record.level,
        limit=record.limit,
        notificationURI=record.notification_uri,
    )


def subscription_list(edev_id: int, items: list[Subscription], total: int) -> SubscriptionListResponse:
    return SubscriptionListResponse(
        href=hrefs.sub_list(edev_id), all_=total, results=len(items), subscriptions=items
    )
