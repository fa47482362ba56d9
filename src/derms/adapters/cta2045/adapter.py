"""The CTA-2045 adapter: a UCM per registered SGD, reached over TCP at ``host:port``.

Each session keeps the link open, polls the operational state and a Get CommodityRead every
``poll_interval_s`` and publishes them as telemetry (power consumed → negative ``p_w``;
present/total energy storage → ``soc``; curtailed/heightened states → status) and, when the
SGD reports both storage commodities (CTA-2045-B codes 6 Total and 7 Present Energy
Storage/Take Capacity, cumulative field in Wh), as device state (``tank_wh`` of
``tank_max_wh``, ``der.state.cta2045``) for the planner's tank model. Commands are
:class:`Cta2045Command` payloads from the bridge; the adapter reports SENT, then
ACKNOWLEDGED on the SGD's application ACK, then ACTIVE once the operational state shows
the SGD curtailed or heightened as asked (or FAILED on a NAK, a link failure or a timeout).
Commands hold over their window (:class:`~derms.adapters.windows.CommandWindows`):
delivered at start, an End Shed at the end when the SGD would not end the event itself
(unknown duration, power level, an Advanced Load Up longer than the window), COMPLETED at
the end, SUPERSEDED by the next command to the same SGD.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from cta2045.enums import AdvancedLoadUpUnits, CommodityCode, OperationalState
from pydantic import BaseModel, Field

from derms.adapters.base import AdapterContext, NativeCommand
from derms.adapters.cta2045.link import LinkError, open_tcp
from derms.adapters.cta2045.ucm import ApplicationNak, Ucm
from derms.adapters.sessions import DeviceSession, SessionAdapter
from derms.core.controls import ControlKind
from derms.core.der import Der
from derms.core.device_state import DeviceState
from derms.core.dispatch import CommandState
from derms.core.telemetry import OperationalStatus, Telemetry

logger = logging.getLogger(__name__)


class Cta2045Settings(BaseModel):
    poll_interval_s: float = Field(30.0, gt=0)
    ack_timeout_s: float = Field(0.5, gt=0)
    retries: int = Field(2, ge=0)
    response_timeout_s: float = Field(3.0, gt=0)
    reconnect_delay_s: float = Field(5.0, gt=0)


class Action(StrEnum):
    SHED = "shed"
    END_SHED = "end_shed"
    LOAD_UP = "load_up"
    CRITICAL_PEAK = "critical_peak"
    GRID_EMERGENCY = "grid_emergency"
    ADVANCED_LOAD_UP = "advanced_load_up"
    POWER_LEVEL = "power_level"


@dataclass(frozen=True, slots=True)
class Cta2045Command:
    """A CTA-2045 DR command as it goes on the wire (durations already quantised)."""

    action: Action
    duration_s: float | None = None
    """Basic DR event duration (``2·n²`` s) or None for unknown (until End Shed)."""
    minutes: int = 0
    """Advanced Load Up duration [min]."""
    value: int = 0
    units: AdvancedLoadUpUnits = AdvancedLoadUpUnits.Wh_1
    percent: int = 0


_CURTAILED = {OperationalState.Running_Curtailed, OperationalState.Idle_Curtailed}
_HEIGHTENED = {OperationalState.Running_Heightened, OperationalState.Idle_Heightened}
_EXPECTED = {
    Action.SHED: _CURTAILED,
    Action.CRITICAL_PEAK: _CURTAILED,
    Action.GRID_EMERGENCY: _CURTAILED,
    Action.LOAD_UP: _HEIGHTENED,
    Action.ADVANCED_LOAD_UP: _HEIGHTENED,
    Action.END_SHED: {OperationalState.Running_Normal, OperationalState.Idle_Normal},
}


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError as exc:
        raise ValueError(f"CTA-2045 address {address!r} is not host:port") from exc


def status_of(state: OperationalState | int) -> OperationalStatus:
    name = state.name if isinstance(state, OperationalState) else ""
    if name == "SGD_Error":
        return OperationalStatus.FAULT
    if name.startswith(("Running", "Cycling_On", "Variable")):
        return OperationalStatus.ON
    if name.startswith(("Idle", "Cycling_Off")):
        return OperationalStatus.STANDBY
    return OperationalStatus.UNKNOWN


class _Session(DeviceSession):
    def __init__(self, adapter: Cta2045Adapter, der: Der) -> None:
        super().__init__(der)
        self.adapter = adapter
        self.host, self.port = parse_address(der.address)
        self.ucm: Ucm | None = None

    async def run(self) -> None:
        s, ctx = self.adapter.settings, self.adapter.context
        while True:
            try:
                link = await open_tcp(
                    self.host,
                    self.port,
                    name=f"ucm:{self.der.id}",
                    ack_timeout_s=s.ack_timeout_s,
                    retries=s.retries,
                )
                self.ucm = Ucm(link, response_timeout_s=s.response_timeout_s)
                self.online = True
                await ctx.publish_status(self.der.id, True, "connected")
                while not link.closed.is_set():
                    await self.poll()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(link.closed.wait(), s.poll_interval_s)
                raise LinkError("SGD closed the link")
            except (LinkError, ApplicationNak, OSError) as exc:
                logger.warning("CTA-2045 %s (%s): %s", self.der.id, self.der.address, exc)
                if self.online:
                    self.online = False
                    await ctx.publish_status(self.der.id, False, str(exc))
            finally:
                await self.close()
            await asyncio.sleep(s.reconnect_delay_s)

    async def close(self) -> None:
        if self.ucm is not None:
            await self.ucm.close()
            self.ucm = None

    async def poll(self) -> OperationalState | int:
        assert self.ucm is not None
        state = await self.ucm.operational_state()
        reports = {r.code: r for r in await self.ucm.commodity_read()}
        consumed = reports.get(CommodityCode.Electricity_Consumed)
        total = reports.get(CommodityCode.Total_Energy_Storage)
        present = reports.get(CommodityCode.Present_Energy_Storage)
        soc = None
        now = self.adapter.context.clock.now()
        if total is not None and present is not None and total.cumulative > 0:
            soc = min(1.0, present.cumulative / total.cumulative)
            stored = DeviceState(
                self.der.id,
                now,
                tank_wh=float(max(present.cumulative, 0)),
                tank_max_wh=float(total.cumulative),
            )
            await self.adapter.context.publish_device_state([stored])
        opted_out = self.ucm.customer_override or (
            isinstance(state, OperationalState) and "Opted_Out" in state.name
        )
        await self.adapter.context.publish_telemetry(
            [
                Telemetry(
                    der_id=self.der.id,
                    ts=now,
                    p_w=None if consumed is None else -float(consumed.instantaneous),
                    soc=soc,
                    status=status_of(state),
                    available=not opted_out,
                )
            ]
        )
        return state


class Cta2045Adapter(SessionAdapter[_Session]):
    """UCM adapter for CTA-2045-B SGDs (water heaters, thermostats, EVSE)."""

    protocol: ClassVar[str] = "cta2045"
    native_controls: ClassVar[frozenset[ControlKind]] = frozenset(
        {ControlKind.LOAD_SHED, ControlKind.LOAD_UP}
    )

    def __init__(self, context: AdapterContext, settings: Cta2045Settings | None = None) -> None:
        super().__init__(context)
        self.settings = settings or Cta2045Settings()

    def open_session(self, der: Der) -> _Session:
        return _Session(self, der)

    async def send(self, command: NativeCommand) -> None:
        session = self.session(command.der_id)
        payload = command.payload
        if not isinstance(payload, Cta2045Command):
            raise TypeError(f"CTA-2045 adapter needs a Cta2045Command payload, got {type(payload).__name__}")

        async def deliver() -> bool:
            return await self._deliver(session, command, payload)

        async def end_event() -> str | None:
            ucm = session.ucm
            if ucm is None:
                return "not connected"
            try:
                await ucm.end_shed()
            except (ApplicationNak, LinkError) as exc:
                return str(exc)
            return None

        window_s = (command.end - command.start).total_seconds()
        self_ending = (payload.duration_s is not None and payload.action is not Action.POWER_LEVEL) or (
            payload.action is Action.ADVANCED_LOAD_UP and payload.minutes * 60 <= window_s
        )
        needs_end = payload.action is not Action.END_SHED and not self_ending
        await self.windows.submit(command, "dr", deliver, end_event if needs_end else None)

    async def _deliver(self, session: _Session, command: NativeCommand, payload: Cta2045Command) -> bool:
        ctx, cid, der_id = self.context, command.command_id, command.der_id
        ucm = session.ucm
        if ucm is None or ucm.link.closed.is_set():
            await ctx.report_command(cid, der_id, CommandState.FAILED, "not connected")
            return False
        await ctx.report_command(cid, der_id, CommandState.SENT, payload.action.value)
        try:
            await _deliver(ucm, payload)
        except ApplicationNak as exc:
            await ctx.report_command(cid, der_id, CommandState.FAILED, str(exc))
            return False
        except LinkError as exc:
            await ctx.report_command(cid, der_id, CommandState.FAILED, f"link: {exc}")
            return False
        await ctx.report_command(cid, der_id, CommandState.ACKNOWLEDGED, "application ACK")
        expected = _EXPECTED.get(payload.action)
        if expected is not None:
            try:
                state = await session.poll()
            except (LinkError, ApplicationNak) as exc:
                logger.warning("CTA-2045 %s: state after %s unknown: %s", der_id, payload.action, exc)
                return True
            if state in expected:
                await ctx.report_command(cid, der_id, CommandState.ACTIVE, f"operational state {state}")
        return True


async def _deliver(ucm: Ucm, c: Cta2045Command) -> None:
    match c.action:
        case Action.SHED:
            await ucm.shed(c.duration_s)
        case Action.END_SHED:
            await ucm.end_shed()
        case Action.LOAD_UP:
            await ucm.load_up(c.duration_s)
        case Action.CRITICAL_PEAK:
            await ucm.critical_peak(c.duration_s)
        case Action.GRID_EMERGENCY:
            await ucm.grid_emergency(c.duration_s)
        case Action.ADVANCED_LOAD_UP:
            await ucm.advanced_load_up(c.minutes, c.value, c.units)
        case Action.POWER_LEVEL:
            await ucm.power_level(c.percent)


def create_adapter(context: AdapterContext, settings: Cta2045Settings | None = None) -> Cta2045Adapter:
    return Cta2045Adapter(context, settings)
