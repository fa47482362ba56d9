"""Platform commands as 3.0.1 events on derms' own 3.0.1 VTN.

The bridge (:mod:`derms.bridge.openadr3`) turns a setpoint into an :class:`Event`; here it is
created in the dispatch program (created on first use, stored with the VTN's other objects)
by derms acting as business logic, so subscribers get their webhook like for any other
event. 3.0.1 has no opt or acknowledgement message: a report from the targeted VEN on the
event acknowledges it (3.0.1 User Guide, reports answer an event's ``reportDescriptors``).
Command states: SENT on creation, ACKNOWLEDGED on the VEN's first report, ACTIVE and
COMPLETED from the injected clock and the event's interval period, CANCELLED when the
command is cancelled (the event is deleted, which notifies DELETE subscribers), FAILED when
storage refuses the event (nothing is created; the adapter contract reports device-side and
delivery failures as FAILED instead of raising).

With a database the commands in flight are kept in ``openadr3_command``
(:mod:`~derms.adapters.openadr.oadr3.commands`), written in the event's transaction, so after a
restart a VEN's report still acknowledges its command and the clock still completes it. A
state is reported before it is stored: a crash in between reports it again after the
restart rather than never.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from derms.adapters.base import NativeCommand
from derms.adapters.openadr.oadr3.auth import SCOPES, Principal
from derms.adapters.openadr.oadr3.commands import CommandRow, CommandStore
from derms.adapters.openadr.oadr3.models import (
    Event,
    IntervalPeriod,
    Program,
    Report,
    Stored,
    Ven,
    parse_duration,
)
from derms.adapters.openadr.oadr3.vtn import Vtn3
from derms.core.dispatch import CommandState

log = structlog.get_logger(__name__)

DERMS = Principal("derms", "BL", None, SCOPES["BL"])
"""derms itself, writing programs and events as business logic."""

_DONE = (CommandState.FAILED, CommandState.CANCELLED, CommandState.COMPLETED)

ReportState = Callable[[NativeCommand, CommandState, str], Awaitable[None]]


@dataclass(slots=True)
class _Sent:
    command: NativeCommand
    event_id: str
    ven_name: str
    state: CommandState = CommandState.SENT


class Dispatch3:
    def __init__(self, vtn: Vtn3, program_name: str, ven_names: frozenset[str], report: ReportState) -> None:
        self.vtn = vtn
        self.program_name = program_name
        self.ven_names = ven_names
        """venNames of the provisioned 3.0.1 VEN clients."""
        self.report = report
        self.store = CommandStore(vtn.store.engine) if vtn.store is not None else None
        """Commands are kept in the database the VTN keeps its objects in."""
        self.sent: dict[str, _Sent] = {}
        """Commands in flight, by command id."""
        self._recheck: list[str] = []
        """Reloaded commands not yet acknowledged: their VEN may have reported meanwhile."""
        for row in self.store.load() if self.store is not None else []:
            owned = vtn.objects["EVENT"].get(row.event_id)
            command = NativeCommand(
                row.command_id, row.der_id, row.protocol, owned.obj if owned else None, row.start, row.end
            )
            self.sent[row.command_id] = _Sent(command, row.event_id, row.ven_name, row.state)
            if row.state is CommandState.SENT:
                self._recheck.append(row.command_id)

    def speaks(self, ven_name: str) -> bool:
        """A provisioned 3.0.1 VEN client, or a VEN object on the 3.0.1 VTN, has this name."""
        return ven_name in self.ven_names or any(
            isinstance(o.obj, Ven) and o.obj.ven_name == ven_name for o in self.vtn.objects["VEN"].values()
        )

    def program_id(self) -> str:
        for owned in self.vtn.objects["PROGRAM"].values():
            if isinstance(owned.obj, Program) and owned.obj.program_name == self.program_name:
                return owned.obj.id or ""
        created = self.vtn.create(DERMS, "PROGRAM", Program(program_name=self.program_name))
        return created.id or ""

    async def send(self, command: NativeCommand, event: Event, ven_name: str) -> None:
        """Create the event (and its command record, in one transaction) and report SENT; if
        storage fails, report FAILED with the reason and create nothing."""

        def record(conn: Connection, stored: Stored) -> None:
            row = CommandRow(
                command.command_id,
                command.der_id,
                command.protocol,
                stored.id or "",
                ven_name,
                CommandState.SENT,
                command.start,
                command.end,
            )
            CommandStore.insert(conn, row)

        try:
            if event.program_id not in self.vtn.objects["PROGRAM"]:
                event = event.model_copy(update={"program_id": self.program_id()})
            created = self.vtn.create(DERMS, "EVENT", event, also=record if self.store is not None else None)
        except SQLAlchemyError as exc:
            log.warning("openadr3.dispatch.storage_failed", command=command.command_id, error=str(exc))
            detail = f"storage failed, no event created: {type(exc).__name__}"
            await self.report(command, CommandState.FAILED, detail)
            return
        self.sent[command.command_id] = _Sent(command, created.id or "", ven_name)
        await self.report(command, CommandState.SENT, f"event {created.id} on the 3.0.1 VTN")

    async def cancel(self, command_id: str) -> bool:
        """Delete the command's event; False if no command in flight has this id."""
        sent = self.sent.get(command_id)
        if sent is None:
            return False
        if sent.event_id in self.vtn.objects["EVENT"]:
            self.vtn.delete(DERMS, "EVENT", sent.event_id)
        await self._move(sent, CommandState.CANCELLED, "event deleted")
        return True

    async def changed(self, kind: str, obj: Stored) -> None:
        """A report from the targeted VEN on a sent event acknowledges the command."""
        if kind != "REPORT" or not isinstance(obj, Report):
            return
        for sent in list(self.sent.values()):
            if self._acknowledges(sent, obj):
                await self._move(sent, CommandState.ACKNOWLEDGED, f"VEN {sent.ven_name} reported")

    @staticmethod
    def _acknowledges(sent: _Sent, report: Report) -> bool:
        ours = sent.event_id == report.event_id and report.client_name == sent.ven_name
        return ours and sent.state is CommandState.SENT

    async def tick(self, now: datetime) -> None:
        if self._recheck:
            recheck, self._recheck = self._recheck, []
            reports = [o.obj for o in self.vtn.objects["REPORT"].values() if isinstance(o.obj, Report)]
        else:
            recheck, reports = [], []
        for command_id in recheck:
            sent = self.sent.get(command_id)
            if sent is not None and any(self._acknowledges(sent, r) for r in reports):
                await self._move(sent, CommandState.ACKNOWLEDGED, f"VEN {sent.ven_name} reported")
        for sent in list(self.sent.values()):
            owned = self.vtn.objects["EVENT"].get(sent.event_id)
            if owned is None:
                await self._move(sent, CommandState.CANCELLED, "event deleted on the VTN")
                continue
            start, end = window(owned.obj)  # type: ignore[arg-type]
            if end is not None and now >= end:
                await self._move(sent, CommandState.COMPLETED, "event completed")
            elif start is not None and start <= now and sent.state is CommandState.ACKNOWLEDGED:
                await self._move(sent, CommandState.ACTIVE, "event active")

    async def _move(self, sent: _Sent, state: CommandState, detail: str) -> None:
        if sent.state is state:
            return
        sent.state = state
        await self.report(sent.command, state, detail)
        command_id = sent.command.command_id
        if state in _DONE:
            self.sent.pop(command_id, None)
        if self.store is None:
            return
        try:
            if state in _DONE:
                self.store.drop(command_id)
            else:
                self.store.set_state(command_id, state)
        except SQLAlchemyError as exc:
            # reported already; after a restart the stored state is older and may be reported again
            log.warning("openadr3.dispatch.state_not_stored", command=command_id, state=state, error=str(exc))


def window(event: Event) -> tuple[datetime | None, datetime | None]:
    """Start and end of an event. Intervals without a period of their own follow each other
    from the event's ``intervalPeriod`` (3.0.1 User Guide, intervals); an unbounded or
    calendar duration (``P9999Y``) leaves the end open."""
    starts: list[datetime] = []
    ends: list[datetime | None] = []
    default = event.interval_period
    offset = timedelta(0)
    for interval in event.intervals:
        period = interval.interval_period
        if period is None and default is not None:
            period = IntervalPeriod(start=default.start + offset, duration=default.duration)
        if period is None:
            continue
        try:
            length = parse_duration(period.duration) if period.duration else timedelta(0)
        except ValueError:
            length = None
        starts.append(period.start)
        ends.append(None if length is None else period.start + length)
        offset += length or timedelta(0)
    end = None if not ends or None in ends else max(e for e in ends if e is not None)
    return (min(starts) if starts else None, end)
