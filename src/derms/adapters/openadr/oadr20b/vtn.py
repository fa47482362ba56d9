"""OpenADR 2.0b VTN service logic (transport-independent).

:class:`Vtn` answers the five simple-HTTP services of 2.0b section 13 (EiRegisterParty,
EiEvent, EiOpt, EiReport, OadrPoll) with bytes in and bytes out. In pull mode (2.0b 8.4,
``oadrHttpPullModel=true``) everything the VTN wants to say (new or modified events, report
requests, re-registration, cancellation) waits for the VEN's next ``oadrPoll``. For a VEN
registered in the push model (``oadrHttpPullModel=false`` with an ``oadrTransportAddress``) the
same messages are handed out by :meth:`Vtn.next_push` to :class:`~.push.PushDelivery`, which
POSTs them to the VEN; what it could not deliver stays queued for the VEN's next poll.

Bad input never changes state: a payload that is not well-formed, fails the schema, names an
unknown VEN or is out of sequence is answered with an ``oadrResponse`` carrying the 2.0b error
code (454 invalid data, 452 invalid id, 463 not registered or authorized, 453 not recognized).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from lxml import etree

from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import (
    Event,
    EventResponse,
    Opt,
    Registration,
    Report,
    ReportDescription,
    ReportRequest,
    ReportValue,
    Target,
)
from derms.adapters.openadr.oadr20b.schema import SchemaValidator
from derms.adapters.openadr.oadr20b.signature import SignatureError, Verifier, is_signed
from derms.adapters.openadr.oadr20b.templates import Template
from derms.adapters.openadr.oadr20b.vocabulary import (
    EventStatus,
    OptType,
    ReportName,
    ResponseRequired,
    Status,
)
from derms.adapters.openadr.oadr20b.xmlutil import MalformedMessage
from derms.core.clock import Clock


class VtnListener(Protocol):
    """What the VTN tells the platform (the adapter implements it)."""

    async def ven_registered(self, ven: VenRecord) -> None: ...

    async def ven_cancelled(self, ven: VenRecord) -> None: ...

    async def event_response(self, ven: VenRecord, event: Event, opt_type: OptType) -> None: ...

    async def report_values(
        self, ven: VenRecord, points: list[tuple[ReportDescription, ReportValue]]
    ) -> None: ...


class VtnPersistence(Protocol):
    """Write-through storage of the VTN's state (see :mod:`derms.adapters.openadr.persistence`)."""

    def save_ven(self, ven: VenRecord) -> None: ...

    def save_event(self, event: Event) -> None: ...

    def save_opts(self, event_id: str, ven_id: str, history: list[OptState]) -> None: ...

    def save_schedule(self, opt: Opt) -> None: ...

    def drop(self, kind: str, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class VenProfile:
    """A VEN provisioned out of band: its name, TLS fingerprint, groups and party."""

    ven_name: str
    fingerprint: str | None = None
    ven_id: str | None = None
    group_ids: tuple[str, ...] = ()
    party_id: str | None = None
    resource_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class VenRecord:
    ven_id: str
    registration_id: str
    registration: Registration
    profile: VenProfile
    registered_at: datetime
    reports: dict[str, Report] = field(default_factory=dict)
    report_requests: dict[str, ReportRequest] = field(default_factory=dict)
    pending_reports: set[str] = field(default_factory=set)
    outbox: deque[etree._Element] = field(default_factory=deque)
    events_dirty: bool = True
    last_seen: datetime | None = None
    distributed_at: datetime | None = None

    @property
    def ven_name(self) -> str:
        return self.registration.ven_name

    @property
    def push(self) -> bool:
        """Registered for the simple-HTTP push model (2.0b 8.4): the VTN calls the VEN."""
        return not self.registration.http_pull_model and bool(self.registration.transport_address)

    @property
    def resource_ids(self) -> set[str]:
        found = set(self.profile.resource_ids)
        for r in self.reports.values():
            found.update(d.resource_id for d in r.descriptions if d.resource_id)
        return found

    def targeted_by(self, target: Target) -> bool:
        """Whether an event target selects this VEN (2.0b 8.3: venID, resourceID, groupID, partyID).

        A venID target may also carry the VEN's name (operators target VENs before they have
        registered and been given a venID); :func:`_wire_target` puts the venID on the wire.
        """
        if target.empty:
            return True
        return bool(
            self.ven_id in target.ven_ids
            or self.ven_name in target.ven_ids
            or self.resource_ids.intersection(target.resource_ids)
            or set(self.profile.group_ids).intersection(target.group_ids + target.group_names)
            or (self.profile.party_id is not None and self.profile.party_id in target.party_ids)
        )


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the VTN pushes to a push-model VEN's ``service`` endpoint."""

    service: str
    data: bytes
    message: etree._Element | None
    """The queued message (put back if delivery fails); ``None`` for the VEN's events."""


@dataclass(frozen=True, slots=True)
class OptState:
    opt_type: OptType
    modification_number: int
    at: datetime
    source: str
    """``createdEvent`` or ``createOpt:<optID>``."""


class Vtn:
    """A 2.0b VTN. Thread-unsafe; run it on one event loop."""

    def __init__(
        self,
        vtn_id: str,
        clock: Clock,
        *,
        poll_freq: timedelta = timedelta(seconds=10),
        report_granularity: timedelta = timedelta(seconds=10),
        validator: SchemaValidator | None = None,
        profiles: Iterable[VenProfile] = (),
        open_enrolment: bool = True,
        listener: VtnListener | None = None,
        signer: Callable[[etree._Element], etree._Element] | None = None,
        verifier: Verifier | None = None,
        require_signatures: bool = False,
        store: VtnPersistence | None = None,
    ) -> None:
        self.vtn_id = vtn_id
        self.clock = clock
        self.poll_freq = poll_freq
        self.report_granularity = report_granularity
        self.validator = validator
        self.open_enrolment = open_enrolment
        self.listener = listener
        self.signer = signer
        self.verifier = verifier
        self.require_signatures = require_signatures
        self.store = store
        self.profiles = {p.ven_name: p for p in profiles}
        self.vens: dict[str, VenRecord] = {}
        self.events: dict[str, Event] = {}
        self.opt_history: dict[tuple[str, str], list[OptState]] = {}
        """(event id, VEN id) → opt states in arrival order; the last one is in force."""
        self.opts: dict[str, Opt] = {}
        self.acknowledged: dict[tuple[str, str], datetime] = {}
        """(event id, VEN id) → when the VEN's oadrCreatedEvent for the current version arrived."""
        self._distributions: dict[tuple[tuple[Event, EventStatus], ...], Template] = {}
        """Serialized oadrDistributeEvent per event set as sent (versions, statuses, wire targets)."""
        self.pusher: Callable[[VenRecord], None] | None = None
        """Told when a push-model VEN has something to receive (see :mod:`.push`)."""

    # ------------------------------------------------------------------ operator side

    def create_event(self, event: Event) -> Event:
        if event.event_id in self.events:
            raise ValueError(f"event {event.event_id} exists; modify it instead")
        self.events[event.event_id] = event
        self._mark_dirty(event)
        if self.store is not None:
            self.store.save_event(event)
        return event

    def modify_event(self, event: Event) -> Event:
        """Replace an event with a new version; ``modificationNumber`` must grow (2.0b 8.2.2)."""
        old = self.events.get(event.event_id)
        if old is None:
            raise KeyError(event.event_id)
        if event.modification_number <= old.modification_number:
            event = replace(event, modification_number=old.modification_number + 1)
        self.events[event.event_id] = event
        self._mark_dirty(old, event)
        if self.store is not None:
            self.store.save_event(event)
        return event

    def cancel_event(self, event_id: str, reason: str = "cancelled") -> Event:
        old = self.events[event_id]
        cancelled = old.modified(
            status=EventStatus.CANCELLED, modification_reason=reason, modification_date_time=self.clock.now()
        )
        self.events[event_id] = cancelled
        self._mark_dirty(old, cancelled)
        if self.store is not None:
            self.store.save_event(cancelled)
        return cancelled

    def request_reregistration(self, ven_id: str) -> None:
        self._queue(self.vens[ven_id], codec.request_reregistration(ven_id))

    def cancel_registration(self, ven_id: str) -> None:
        ven = self.vens[ven_id]
        self._queue(ven, codec.cancel_party_registration(_new_id(), ven.registration_id, ven_id))

    def _queue(self, ven: VenRecord, msg: etree._Element) -> None:
        ven.outbox.append(msg)
        if ven.push and self.pusher is not None:
            self.pusher(ven)

    def opt_state(self, event_id: str, ven_id: str) -> OptState | None:
        history = self.opt_history.get((event_id, ven_id))
        return history[-1] if history else None

    def _record_opt(self, event_id: str, ven_id: str, state: OptState) -> None:
        history = self.opt_history.setdefault((event_id, ven_id), [])
        history.append(state)
        if self.store is not None:
            self.store.save_opts(event_id, ven_id, history)

    def restore(
        self,
        vens: dict[str, VenRecord],
        events: dict[str, Event],
        opt_history: dict[tuple[str, str], list[OptState]],
        opts: dict[str, Opt],
    ) -> None:
        """Load a stored working set; every VEN gets its events again at its next poll."""
        for ven in vens.values():
            ven.profile = self.profiles.get(ven.ven_name, ven.profile)
            ven.events_dirty = True
        self.vens, self.events, self.opt_history, self.opts = vens, events, opt_history, opts

    def events_for(self, ven: VenRecord) -> list[Event]:
        """Events this VEN should hold now: targeted, not completed, not cancelled long ago."""
        now = self.clock.now()
        return [
            e
            for e in self.events.values()
            if ven.targeted_by(e.target) and (e.end > now or e.duration == timedelta(0))
        ]

    def _mark_dirty(self, *events: Event) -> None:
        for ven in self.vens.values():
            if any(ven.targeted_by(e.target) for e in events):
                ven.events_dirty = True
                if ven.push and self.pusher is not None:
                    self.pusher(ven)

    # ------------------------------------------------------------------ push model

    def next_push(self, ven: VenRecord) -> Outgoing | None:
        """What to push to this VEN now: its changed events first, then queued messages."""
        if ven.events_dirty and self.events_for(ven):
            return Outgoing("EiEvent", self._reply(self.distribute(ven)), None)
        ven.events_dirty = False
        if ven.outbox:
            msg = ven.outbox.popleft()
            return Outgoing(_PUSH_SERVICES[etree.QName(msg).localname], self._reply(msg), msg)
        return None

    def push_failed(self, ven: VenRecord, sent: Outgoing) -> None:
        """Keep an undelivered message for the next attempt or, if the VEN also polls, its poll."""
        if sent.message is None:
            ven.events_dirty = True
        else:
            ven.outbox.appendleft(sent.message)

    async def push_reply(
        self, ven: VenRecord, sent: Outgoing, data: bytes, peer_fingerprint: str | None = None
    ) -> bool:
        """Process the VEN's HTTP reply to a push; ``True`` if it accepted the message.

        The reply is an ``oadrResponse`` (the VEN's own message, such as ``oadrCreatedEvent``,
        may follow as a request of its own) or that message itself, which goes through
        :meth:`handle` like any request: schema, signature, venID and fingerprint checks.
        """
        try:
            incoming = codec.parse_payload(data)
            if self.validator is not None:
                self.validator.check(incoming.root)
        except MalformedMessage:
            return False
        if incoming.name != "oadrResponse":
            answer = codec.parse_payload(await self.handle(sent.service, data, peer_fingerprint))
            return codec.decode_response(answer.element)[0] == Status.OK
        if incoming.ven_id() not in (None, ven.ven_id):
            return False
        if is_signed(incoming.root) and self.verifier is not None:
            try:
                signer = self.verifier.verify(incoming.root, None, self.clock.now())
            except SignatureError:
                return False
            if not self._fingerprint_ok(ven.profile, signer):
                return False
        elif self.require_signatures:
            return False
        try:
            return codec.decode_response(incoming.element)[0] == Status.OK
        except MalformedMessage:
            return False

    # ------------------------------------------------------------------ wire side

    async def handle(self, service: str, data: bytes, peer_fingerprint: str | None = None) -> bytes:
        """Answer one simple-HTTP POST to ``service``; always returns an ``oadrPayload``."""
        try:
            incoming = codec.parse_payload(data)
            if self.validator is not None:
                self.validator.check(incoming.root)
        except MalformedMessage as exc:
            return self._reply(codec.response(Status.INVALID_DATA, _short(exc), None, None))
        request_id = incoming.request_id()
        ven_id = incoming.ven_id()
        signer_fp: str | None = None
        if is_signed(incoming.root) and self.verifier is not None:
            try:
                signer_fp = self.verifier.verify(incoming.root, None, self.clock.now())
            except SignatureError as exc:
                return self._reply(
                    codec.response(Status.NOT_REGISTERED_OR_AUTHORIZED, _short(exc), request_id, ven_id)
                )
        elif self.require_signatures:
            return self._reply(
                codec.response(
                    Status.NOT_REGISTERED_OR_AUTHORIZED,
                    "XML signature required",
                    request_id,
                    ven_id,
                )
            )
        handler = _HANDLERS.get((service, incoming.name))
        if handler is None:
            return self._reply(
                codec.response(
                    Status.NOT_RECOGNIZED,
                    f"{incoming.name} is not handled by {service}",
                    request_id,
                    ven_id,
                )
            )
        ven: VenRecord | None = None
        if incoming.name not in _UNAUTHENTICATED or ven_id:
            ven = self.vens.get(ven_id or "")
            if ven is None and incoming.name not in _UNAUTHENTICATED:
                return self._reply(
                    codec.response(
                        Status.NOT_REGISTERED_OR_AUTHORIZED, "VEN not registered", request_id, ven_id
                    )
                )
            if ven is not None and not (
                self._fingerprint_ok(ven.profile, peer_fingerprint)
                and (signer_fp is None or self._fingerprint_ok(ven.profile, signer_fp))
            ):
                return self._reply(
                    codec.response(
                        Status.NOT_REGISTERED_OR_AUTHORIZED,
                        "client certificate does not match this VEN",
                        request_id,
                        ven_id,
                    )
                )
        if ven is not None:
            ven.last_seen = self.clock.now()
        try:
            answer = await handler(self, incoming, ven, peer_fingerprint)
        except MalformedMessage as exc:
            answer = codec.response(Status.INVALID_DATA, _short(exc), request_id, ven_id)
        return self._reply(answer)

    def _reply(self, msg: etree._Element | bytes) -> bytes:
        if isinstance(msg, bytes):
            return msg  # pre-serialized (unsigned mode only)
        payload = codec.envelope(msg)
        if self.signer is not None:
            payload = self.signer(payload)
        return codec.serialize(payload)

    def _ok(self, request_id: str | None, ven_id: str) -> etree._Element | bytes:
        """``oadrResponse`` 200 for ``ven_id``; from a template unless replies are signed."""
        if self.signer is not None:
            return codec.response(Status.OK, "OK", request_id, ven_id)
        if request_id is None:
            return _IDLE.fill(ven_id)
        return _OK.fill(request_id, ven_id)

    @staticmethod
    def _fingerprint_ok(profile: VenProfile, peer: str | None) -> bool:
        return profile.fingerprint is None or (
            peer is not None and peer.upper() == profile.fingerprint.upper()
        )

    # ------------------------------------------------------------------ EiRegisterParty

    async def _query_registration(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        return codec.created_party_registration(
            Status.OK, "OK", msg.request_id() or "", self.vtn_id, None, None, self.poll_freq
        )

    async def _create_party_registration(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        reg = codec.decode_registration(msg.element)
        request_id = msg.request_id() or ""

        def refuse(code: int, why: str) -> etree._Element:
            return codec.created_party_registration(
                code, why, request_id, self.vtn_id, None, None, self.poll_freq
            )

        if reg.profile_name != "2.0b":
            return refuse(Status.NOT_ALLOWED, f"profile {reg.profile_name} not supported")
        if reg.transport_name != "simpleHttp":
            return refuse(Status.NOT_ALLOWED, f"transport {reg.transport_name} not supported")
        if not reg.http_pull_model and not reg.transport_address:
            return refuse(Status.INVALID_DATA, "push model needs oadrTransportAddress")
        profile = self.profiles.get(reg.ven_name)
        if profile is None:
            if not self.open_enrolment:
                return refuse(Status.NOT_REGISTERED_OR_AUTHORIZED, f"VEN {reg.ven_name!r} is not provisioned")
            profile = VenProfile(reg.ven_name)
        if not self._fingerprint_ok(profile, fp):
            return refuse(Status.NOT_REGISTERED_OR_AUTHORIZED, "client certificate does not match this VEN")
        if reg.ven_id and reg.ven_id not in self.vens and reg.ven_id != profile.ven_id:
            return refuse(Status.INVALID_ID, f"unknown venID {reg.ven_id}")
        existing = self.vens.get(reg.ven_id or "")
        ven_id = reg.ven_id or profile.ven_id or _new_id()
        if existing is not None:
            existing.registration = reg
            record = existing
        else:
            record = VenRecord(
                ven_id=ven_id,
                registration_id=_new_id(),
                registration=reg,
                profile=profile,
                registered_at=self.clock.now(),
            )
            self.vens[ven_id] = record
        if self.store is not None:
            self.store.save_ven(record)
        if self.listener is not None:
            await self.listener.ven_registered(record)
        return codec.created_party_registration(
            Status.OK, "OK", request_id, self.vtn_id, record.registration_id, record.ven_id, self.poll_freq
        )

    async def _cancel_party_registration(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        assert ven is not None
        registration_id = msg.element.findtext("ei:registrationID", namespaces=codec.NS)
        if registration_id != ven.registration_id:
            return codec.canceled_party_registration(
                Status.INVALID_ID,
                "unknown registrationID",
                msg.request_id() or "",
                registration_id,
                ven.ven_id,
            )
        del self.vens[ven.ven_id]
        if self.store is not None:
            self.store.drop("ven", ven.ven_id)
        if self.listener is not None:
            await self.listener.ven_cancelled(ven)
        return codec.canceled_party_registration(
            Status.OK, "OK", msg.request_id() or "", registration_id, ven.ven_id
        )

    async def _canceled_party_registration(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        assert ven is not None
        code, _, _ = codec.decode_response(msg.element)
        if code == Status.OK:
            del self.vens[ven.ven_id]
            if self.store is not None:
                self.store.drop("ven", ven.ven_id)
            if self.listener is not None:
                await self.listener.ven_cancelled(ven)
        return codec.response(Status.OK, "OK", msg.request_id(), ven.ven_id)

    async def _ack(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        return codec.response(Status.OK, "OK", msg.request_id(), ven.ven_id if ven else None)

    # ------------------------------------------------------------------ EiEvent and OadrPoll

    def distribute(self, ven: VenRecord, request_id: str | None = None) -> etree._Element | bytes:
        """The VEN's ``oadrDistributeEvent`` (2.0b 8.2.1: all its events, each as of now).

        Unsigned, it is serialized once per event set and filled with the requestID for each
        VEN it applies to; the key holds the events themselves, so any change builds anew.
        """
        now = self.clock.now()
        ven.events_dirty = False
        ven.distributed_at = now
        request_id = request_id or _new_id()
        events = tuple((_wire_target(e, ven), e.status_at(now)) for e in self.events_for(ven))
        if self.signer is not None:
            return codec.distribute_event(request_id, self.vtn_id, events)
        template = self._distributions.get(events)
        if template is None:
            if len(self._distributions) >= _MAX_DISTRIBUTIONS:
                self._distributions.clear()
            template = Template.of(1, lambda rid: codec.distribute_event(rid, self.vtn_id, events))
            self._distributions[events] = template
        return template.fill(request_id)

    async def _request_event(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        assert ven is not None
        return self.distribute(ven, msg.request_id())

    async def _created_event(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        assert ven is not None
        _, responses = codec.decode_created_event(msg.element)
        problems = [r for r in responses if self._check_response(r) is not None]
        if problems:
            bad = problems[0]
            return codec.response(
                Status.INVALID_ID if bad.event_id not in self.events else Status.OUT_OF_SEQUENCE,
                self._check_response(bad) or "",
                msg.request_id(),
                ven.ven_id,
            )
        now = self.clock.now()
        for r in responses:
            event = self.events[r.event_id]
            self._record_opt(
                r.event_id, ven.ven_id, OptState(r.opt_type, r.modification_number, now, "createdEvent")
            )
            self.acknowledged[(r.event_id, ven.ven_id)] = now
            if self.listener is not None:
                await self.listener.event_response(ven, event, r.opt_type)
        return self._ok(msg.request_id() or "", ven.ven_id)

    def _check_response(self, r: EventResponse) -> str | None:
        event = self.events.get(r.event_id)
        if event is None:
            return f"unknown eventID {r.event_id}"
        if r.modification_number != event.modification_number:
            return f"event {r.event_id} is at modificationNumber {event.modification_number}, not {r.modification_number}"
        return None

    def unacknowledged(self, ven: VenRecord) -> bool:
        """An event needing a response has had none for its current version for 3 poll periods."""
        now = self.clock.now()
        if ven.distributed_at is None or now - ven.distributed_at < 3 * self.poll_freq:
            return False
        for event in self.events_for(ven):
            if (
                event.response_required is not ResponseRequired.ALWAYS
                or event.status is EventStatus.CANCELLED
            ):
                continue
            state = self.opt_state(event.event_id, ven.ven_id)
            if state is None or state.modification_number != event.modification_number:
                return True
        return False

    async def _poll(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        assert ven is not None
        if (ven.events_dirty or self.unacknowledged(ven)) and self.events_for(ven):
            return self.distribute(ven)
        ven.events_dirty = False
        if ven.outbox:
            return ven.outbox.popleft()
        return self._ok(None, ven.ven_id)

    # ------------------------------------------------------------------ EiOpt

    async def _create_opt(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        assert ven is not None
        o = codec.decode_opt(msg.element)
        request_id = msg.request_id() or ""
        if o.event_id is not None:
            event = self.events.get(o.event_id)
            if event is None:
                return codec.created_opt(
                    Status.INVALID_ID, f"unknown eventID {o.event_id}", request_id, o.opt_id
                )
            self._record_opt(
                o.event_id,
                ven.ven_id,
                OptState(o.opt_type, event.modification_number, self.clock.now(), f"createOpt:{o.opt_id}"),
            )
            if self.listener is not None:
                await self.listener.event_response(ven, event, o.opt_type)
        elif not o.availability:
            return codec.created_opt(
                Status.INVALID_DATA,
                "an opt needs a qualifiedEventID or a vavailability",
                request_id,
                o.opt_id,
            )
        self.opts[o.opt_id] = o
        if self.store is not None:
            self.store.save_schedule(o)
        return codec.created_opt(Status.OK, "OK", request_id, o.opt_id)

    async def _cancel_opt(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        assert ven is not None
        opt_id = msg.element.findtext("ei:optID", namespaces=codec.NS) or ""
        o = self.opts.get(opt_id)
        if o is None or o.ven_id != ven.ven_id:
            return codec.canceled_opt(
                Status.INVALID_ID, f"unknown optID {opt_id}", msg.request_id() or "", opt_id
            )
        del self.opts[opt_id]
        if self.store is not None:
            self.store.drop("optsched", opt_id)
        if o.event_id is not None:
            history = self.opt_history.get((o.event_id, ven.ven_id), [])
            history[:] = [h for h in history if h.source != f"createOpt:{opt_id}"]
            if self.store is not None:
                self.store.save_opts(o.event_id, ven.ven_id, history)
            event = self.events.get(o.event_id)
            current = history[-1] if history else None
            if current is not None and event is not None and self.listener is not None:
                await self.listener.event_response(ven, event, current.opt_type)
        return codec.canceled_opt(Status.OK, "OK", msg.request_id() or "", opt_id)

    def schedule_opt_out(self, ven_id: str, start: datetime, end: datetime) -> Opt | None:
        """The VEN's opt-out schedule covering ``[start, end)``, if any (2.0b 10.2)."""
        for o in self.opts.values():
            if (
                o.ven_id == ven_id
                and o.event_id is None
                and o.opt_type is OptType.OPT_OUT
                and o.covers(start, end)
            ):
                return o
        return None

    # ------------------------------------------------------------------ EiReport

    async def _register_report(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        assert ven is not None
        reports = [codec.decode_report(n) for n in msg.element.findall("oadr:oadrReport", codec.NS)]
        requests = []
        for r in reports:
            ven.reports[r.report_specifier_id] = r
            if r.report_name in (ReportName.METADATA_TELEMETRY_USAGE, ReportName.METADATA_TELEMETRY_STATUS):
                rr = self._request_for(r)
                if rr is not None:
                    ven.report_requests[rr.report_request_id] = rr
                    requests.append(rr)
        if self.store is not None:
            self.store.save_ven(ven)
        return codec.registered_report(Status.OK, "OK", msg.request_id() or "", requests, ven.ven_id)

    def _request_for(self, r: Report) -> ReportRequest | None:
        if not r.descriptions:
            return None
        granularity = self.report_granularity
        for d in r.descriptions:
            if d.min_period is not None and granularity < d.min_period:
                granularity = d.min_period
            if d.max_period is not None and granularity > d.max_period:
                granularity = d.max_period
        return ReportRequest(
            report_request_id=_new_id(),
            report_specifier_id=r.report_specifier_id,
            granularity=granularity,
            report_back_duration=granularity,
            points=tuple((d.r_id, d.reading_type) for d in r.descriptions),
        )

    async def _created_report(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        assert ven is not None
        pending = msg.element.findall("oadr:oadrPendingReports/ei:reportRequestID", codec.NS)
        ven.pending_reports = {(n.text or "").strip() for n in pending}
        return codec.response(Status.OK, "OK", msg.request_id(), ven.ven_id)

    async def _update_report(
        self, msg: codec.Incoming, ven: VenRecord | None, fp: str | None
    ) -> etree._Element | bytes:
        assert ven is not None
        points: list[tuple[ReportDescription, ReportValue]] = []
        for node in msg.element.findall("oadr:oadrReport", codec.NS):
            data = codec.decode_report(node)
            meta = ven.reports.get(data.report_specifier_id)
            if meta is None:
                return codec.updated_report(
                    Status.INVALID_ID,
                    f"unknown reportSpecifierID {data.report_specifier_id}",
                    msg.request_id() or "",
                    ven.ven_id,
                )
            by_rid = {d.r_id: d for d in meta.descriptions}
            for value in data.values:
                description = by_rid.get(value.r_id)
                if description is None:
                    return codec.updated_report(
                        Status.INVALID_ID, f"unknown rID {value.r_id}", msg.request_id() or "", ven.ven_id
                    )
                points.append((description, value))
        if points and self.listener is not None:
            await self.listener.report_values(ven, points)
        return codec.updated_report(Status.OK, "OK", msg.request_id() or "", ven.ven_id)

    def request_report(self, ven_id: str, request: ReportRequest) -> None:
        """Queue an ``oadrCreateReport`` for the VEN's next poll (or push it)."""
        ven = self.vens[ven_id]
        ven.report_requests[request.report_request_id] = request
        if self.store is not None:
            self.store.save_ven(ven)
        self._queue(ven, codec.create_report(_new_id(), [request], ven_id))


_MAX_DISTRIBUTIONS = 1024
_IDLE = Template.of(1, lambda ven_id: codec.response(Status.OK, "OK", None, ven_id))
_OK = Template.of(2, lambda request_id, ven_id: codec.response(Status.OK, "OK", request_id, ven_id))

_PUSH_SERVICES = {
    "oadrCreateReport": "EiReport",
    "oadrCancelReport": "EiReport",
    "oadrRegisterReport": "EiReport",
    "oadrRequestReregistration": "EiRegisterParty",
    "oadrCancelPartyRegistration": "EiRegisterParty",
}
"""The VEN endpoint of each message the VTN queues (2.0b section 13)."""

_UNAUTHENTICATED = frozenset({"oadrQueryRegistration", "oadrCreatePartyRegistration"})

_HANDLERS: dict[tuple[str, str], Callable[..., Awaitable[etree._Element | bytes]]] = {
    ("EiRegisterParty", "oadrQueryRegistration"): Vtn._query_registration,
    ("EiRegisterParty", "oadrCreatePartyRegistration"): Vtn._create_party_registration,
    ("EiRegisterParty", "oadrCancelPartyRegistration"): Vtn._cancel_party_registration,
    ("EiRegisterParty", "oadrCanceledPartyRegistration"): Vtn._canceled_party_registration,
    ("EiRegisterParty", "oadrResponse"): Vtn._ack,
    ("EiEvent", "oadrRequestEvent"): Vtn._request_event,
    ("EiEvent", "oadrCreatedEvent"): Vtn._created_event,
    ("EiOpt", "oadrCreateOpt"): Vtn._create_opt,
    ("EiOpt", "oadrCancelOpt"): Vtn._cancel_opt,
    ("EiReport", "oadrRegisterReport"): Vtn._register_report,
    ("EiReport", "oadrCreatedReport"): Vtn._created_report,
    ("EiReport", "oadrUpdateReport"): Vtn._update_report,
    ("EiReport", "oadrCanceledReport"): Vtn._ack,
    ("EiReport", "oadrResponse"): Vtn._ack,
    ("OadrPoll", "oadrPoll"): Vtn._poll,
}


def _wire_target(event: Event, ven: VenRecord) -> Event:
    """Operators may target a VEN by venName before it registers; on the wire the venID goes."""
    if ven.ven_name not in event.target.ven_ids:
        return event
    ids = tuple(ven.ven_id if v == ven.ven_name else v for v in event.target.ven_ids)
    return replace(event, target=replace(event.target, ven_ids=ids))


def _new_id() -> str:
    return uuid.uuid4().hex


def _short(exc: Exception) -> str:
    return str(exc)[:200]
