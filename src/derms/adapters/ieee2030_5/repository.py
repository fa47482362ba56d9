"""In-process repository of 2030.5 resources.

One lookup per method; methods serving device requests take a :class:`DeviceScope` and
only return what it permits. Indexes (by LFDI, by program, by aggregator) keep every
request O(items returned), so 10,000 EndDevices cost no more per request than ten.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

from derms.adapters.ieee2030_5.codec import Record
from derms.adapters.ieee2030_5.persistence import Persistence
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
from derms.adapters.ieee2030_5.scope import CertificateScope, DeviceScope
from derms.core.errors import NotFound


class Repository:
    """Holds every resource the server publishes or accepts.

    With a :class:`Persistence`, every added or changed record is written through
    (:meth:`save`), and :meth:`restore` rebuilds the repository from it.
    """

    def __init__(self, persistence: Persistence | None = None) -> None:
        self._persistence = persistence
        self._ids = itertools.count(1)
        self.end_devices: dict[int, EndDeviceRecord] = {}
        self._by_lfdi: dict[str, int] = {}
        self._by_der: dict[str, int] = {}
        self._aggregated: dict[int, set[int]] = defaultdict(set)
        self.programs: dict[int, ProgramRecord] = {}
        self._programs_by_edev: dict[int, list[ProgramRecord]] = defaultdict(list)
        self._programs_by_tenant: dict[str, list[ProgramRecord]] = defaultdict(list)
        """Programs for every device of a tenant (``edev_ids`` None)."""
        self._scopes: dict[str, DeviceScope] = {}
        self.controls: dict[int, ControlRecord] = {}
        self._controls_by_program: dict[int, list[int]] = defaultdict(list)
        self._control_by_mrid: dict[str, int] = {}
        self.curves: dict[int, CurveRecord] = {}
        self._curves_by_program: dict[int, list[int]] = defaultdict(list)
        self.mups: dict[int, MirrorUsagePointRecord] = {}
        self._mups_by_edev: dict[int, list[int]] = defaultdict(list)
        self.responses: list[ResponseRecord] = []
        self.log_events: dict[int, list[LogEventRecord]] = defaultdict(list)
        self.subscriptions: dict[int, SubscriptionRecord] = {}

    def next_id(self) -> int:
        return next(self._ids)

    def save(self, record: Record) -> None:
        """Persist a changed record (no-op without persistence)."""
        if self._persistence is not None:
            self._persistence.save(record)

    @classmethod
    def restore(cls, persistence: Persistence) -> Repository:
        """A repository holding everything ``persistence`` stored; ids continue after the largest."""
        repo = cls()
        loaders = {
            EndDeviceRecord: repo.add_end_device,
            ProgramRecord: repo.add_program,
            ControlRecord: repo.add_control,
            CurveRecord: repo.add_curve,
            MirrorUsagePointRecord: repo.add_mup,
            ResponseRecord: repo.add_response,
            LogEventRecord: repo.add_log_event,
            SubscriptionRecord: repo.add_subscription,
        }
        largest = 0
        for record in persistence.load():
            loaders[type(record)](record)  # type: ignore[operator]
            largest = max(largest, record.id)
        repo._ids = itertools.count(largest + 1)
        repo._persistence = persistence
        return repo

    # --- scope -------------------------------------------------------------------------
    def scope_for(self, cert: CertificateScope) -> DeviceScope:
        """The certificate's scope; cached per registered LFDI until an EndDevice is added."""
        cached = self._scopes.get(cert.lfdi)
        if cached is not None:
            return cached
        edev_id = self._by_lfdi.get(cert.lfdi)
        if edev_id is None:
            return DeviceScope(cert.lfdi, cert.sfdi, None, None, frozenset())
        edev = self.end_devices[edev_id]
        visible = {edev_id} | (self._aggregated[edev_id] if edev.is_aggregator else set())
        scope = DeviceScope(
            cert.lfdi, cert.sfdi, edev.tenant_id, edev_id, frozenset(visible), edev.is_aggregator
        )
        self._scopes[cert.lfdi] = scope
        return scope

    # --- end devices -------------------------------------------------------------------
    def add_end_device(self, record: EndDeviceRecord) -> EndDeviceRecord:
        self._scopes.clear()  # an aggregator's visible set may grow
        self.end_devices[record.id] = record
        self._by_lfdi[record.lfdi] = record.id
        if record.der_id:
            self._by_der[record.der_id] = record.id
        if record.aggregator_id is not None:
            self._aggregated[record.aggregator_id].add(record.id)
        self.save(record)
        return record

    def link_der(self, edev_id: int, der_id: str) -> None:
        self.end_devices[edev_id].der_id = der_id
        self._by_der[der_id] = edev_id
        self.save(self.end_devices[edev_id])

    def end_device_by_lfdi(self, lfdi: str) -> EndDeviceRecord | None:
        edev_id = self._by_lfdi.get(lfdi)
        return None if edev_id is None else self.end_devices[edev_id]

    def end_device_by_der(self, der_id: str) -> EndDeviceRecord:
        edev_id = self._by_der.get(der_id)
        if edev_id is None:
            raise NotFound("DER", der_id)
        return self.end_devices[edev_id]

    def end_device(self, scope: DeviceScope, edev_id: int) -> EndDeviceRecord:
        return self.end_devices[scope.require(edev_id)]

    def visible_end_devices(self, scope: DeviceScope) -> list[EndDeviceRecord]:
        return [self.end_devices[i] for i in sorted(scope.edev_ids)]

    # --- programs ----------------------------------------------------------------------
    def add_program(self, record: ProgramRecord) -> ProgramRecord:
        self.programs[record.id] = record
        if record.edev_ids is None:
            self._programs_by_tenant[record.tenant_id].append(record)
        else:
            for edev_id in record.edev_ids:
                self._programs_by_edev[edev_id].append(record)
        self.save(record)
        return record

    def program(self, program_id: int) -> ProgramRecord:
        try:
            return self.programs[program_id]
        except KeyError:
            raise NotFound("DERProgram", program_id) from None

    def programs_for(self, edev: EndDeviceRecord) -> list[ProgramRecord]:
        """Programs assigned to ``edev``, ordered by primacy then id (2030.5 list order)."""
        found = [p for p in self._programs_by_edev.get(edev.id, ()) if p.tenant_id == edev.tenant_id]
        found += self._programs_by_tenant.get(edev.tenant_id, ())
        return sorted(found, key=lambda p: (p.primacy, p.id))

    def program_for(self, edev: EndDeviceRecord, program_id: int) -> ProgramRecord:
        program = self.programs.get(program_id)
        if (
            program is None
            or program.tenant_id != edev.tenant_id
            or (program.edev_ids is not None and edev.id not in program.edev_ids)
        ):
            raise NotFound("DERProgram", program_id)
        return program

    # --- controls and curves -----------------------------------------------------------
    def add_control(self, record: ControlRecord) -> ControlRecord:
        self.controls[record.id] = record
        self._controls_by_program[record.program_id].append(record.id)
        self._control_by_mrid[record.mrid] = record.id
        self.save(record)
        return record

    def controls_of(self, program_id: int) -> list[ControlRecord]:
        return [self.controls[i] for i in self._controls_by_program.get(program_id, ())]

    def control(self, control_id: int) -> ControlRecord:
        try:
            return self.controls[control_id]
        except KeyError:
            raise NotFound("DERControl", control_id) from None

    def control_by_mrid(self, mrid: str) -> ControlRecord | None:
        control_id = self._control_by_mrid.get(mrid.upper())
        return None if control_id is None else self.controls[control_id]

    def add_curve(self, record: CurveRecord) -> CurveRecord:
        self.curves[record.id] = record
        self._curves_by_program[record.program_id].append(record.id)
        self.save(record)
        return record

    def curves_of(self, program_id: int) -> list[CurveRecord]:
        return [self.curves[i] for i in self._curves_by_program.get(program_id, ())]

    # --- metering mirror ---------------------------------------------------------------
    def add_mup(self, record: MirrorUsagePointRecord) -> MirrorUsagePointRecord:
        self.mups[record.id] = record
        self._mups_by_edev[record.edev_id].append(record.id)
        self.save(record)
        return record

    def mups_for(self, scope: DeviceScope) -> list[MirrorUsagePointRecord]:
        ids = itertools.chain.from_iterable(self._mups_by_edev.get(e, ()) for e in sorted(scope.edev_ids))
        return [self.mups[i] for i in sorted(ids)]

    def mup(self, scope: DeviceScope, mup_id: int) -> MirrorUsagePointRecord:
        record = self.mups.get(mup_id)
        if record is None or record.edev_id not in scope.edev_ids:
            raise NotFound("MirrorUsagePoint", mup_id)
        return record

    def mup_by_mrid(self, scope: DeviceScope, mrid: str) -> MirrorUsagePointRecord | None:
        for record in self.mups_for(scope):
            if record.mrid == mrid:
                return record
        return None

    # --- responses, log events, subscriptions ------------------------------------------
    def add_response(self, record: ResponseRecord) -> None:
        self.responses.append(record)
        self.save(record)

    def add_log_event(self, record: LogEventRecord) -> None:
        self.log_events[record.edev_id].append(record)
        self.save(record)

    def responses_for(self, scope: DeviceScope) -> list[ResponseRecord]:
        return [r for r in self.responses if r.edev_id in scope.edev_ids]

    def add_subscription(self, record: SubscriptionRecord) -> None:
        self.subscriptions[record.id] = record
        self.save(record)

    def remove_subscription(self, record: SubscriptionRecord) -> None:
        del self.subscriptions[record.id]
        if self._persistence is not None:
            self._persistence.delete(record)

    def subscriptions_of(self, scope: DeviceScope, edev_id: int) -> list[SubscriptionRecord]:
        scope.require(edev_id)
        return [s for s in self.subscriptions.values() if s.edev_id == edev_id]

    def subscription(self, scope: DeviceScope, edev_id: int, sub_id: int) -> SubscriptionRecord:
        record = self.subscriptions.get(sub_id)
        if record is None or record.edev_id != scope.require(edev_id):
            raise NotFound("Subscription", sub_id)
        return record

    def subscribers(self, resource: str) -> list[SubscriptionRecord]:
        return [s for s in self.subscriptions.values() if s.resource == resource]
