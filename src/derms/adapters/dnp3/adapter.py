"""The DNP3 adapter: one master session per registered plant controller (outstation).

A DER's ``address`` is ``host:port/outstation_address`` (e.g. ``10.0.0.5:20000/10``).
Each session connects, runs an integrity poll (writing the time when IIN1.4 NEED_TIME is
set and clearing IIN1.7 DEVICE_RESTART, IEEE 1815-2012 5.1.4), reads analog inputs and outputs in the float variations the
settings name (an outstation whose default is an integer variation would otherwise
truncate 12.5 to 12), enables unsolicited reporting, then listens for unsolicited
responses between class 1/2/3 event polls, with a fresh integrity poll every
``integrity_interval_s``. A lost connection is reported offline and retried.

Commands hold over their window (:mod:`derms.adapters.windows`): delivered at start,
the modes they enabled latched off at the end (COMPLETED), SUPERSEDED by a later command
on the same mode.

Values are mapped to telemetry through the IEEE 1815.2 (MESA-DER) point map
(:mod:`derms.adapters.dnp3.points`). Poll cadence is wall-clock time because the network
is real; sample timestamps come from the injectable clock.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import ClassVar

from dnp3.transport_io.channel import ChannelError
from pydantic import BaseModel, Field

from derms.adapters.base import AdapterContext, NativeCommand
from derms.adapters.dnp3.codec import AnalogOutput, Crob
from derms.adapters.dnp3.master import (
    CommandRejected,
    Dnp3Master,
    MasterRunnerError,
    OperateMode,
    ValueKind,
)
from derms.adapters.dnp3.points import (
    AI_ACTIVE_POWER,
    AI_FREQUENCY,
    AI_REACTIVE_POWER,
    AI_SOC,
    AI_VOLTAGE_A,
    PointKind,
    PointMap,
    mesa_der_map,
)
from derms.adapters.sessions import DeviceSession, SessionAdapter
from derms.core.controls import ControlKind
from derms.core.der import Der
from derms.core.dispatch import CommandState
from derms.core.telemetry import DataQuality, Telemetry

logger = logging.getLogger(__name__)

NOT_SET = -2147483648.0
"""MESA-DER sentinel for a point with no value (IEEE 1815.2: most negative int32)."""


class Dnp3Settings(BaseModel):
    master_address: int = Field(1, ge=0, le=0xFFEF)
    response_timeout_s: float = Field(5.0, gt=0)
    event_poll_interval_s: float = Field(5.0, gt=0)
    integrity_interval_s: float = Field(600.0, gt=0)
    reconnect_delay_s: float = Field(2.0, gt=0)
    unsolicited: bool = True
    float_reads: list[tuple[int, int]] = Field(default_factory=lambda: [(30, 5), (40, 3)])
    """(group, variation) pairs read after each integrity poll; empty to skip."""
    profile: str = "full"
    """dnp3py MESA-DER profile that defines the point map."""


@dataclass(frozen=True, slots=True)
class Dnp3Command:
    """Native DNP3 control: CROBs and analog outputs sent in one request, in that order of
    blocks, plus the status points to read back to confirm the device applied them."""

    crobs: tuple[Crob, ...] = ()
    analogs: tuple[AnalogOutput, ...] = ()
    mode: OperateMode = OperateMode.SELECT_BEFORE_OPERATE
    verify: tuple[tuple[ValueKind, int, float], ...] = ()
    """(kind, index, expected raw value) read back after OPERATE."""
    revert: tuple[Crob, ...] = ()
    """CROBs sent when the command's window ends (disable the modes it enabled)."""


def parse_address(address: str) -> tuple[str, int, int]:
    """``host:port/outstation`` → (host, port, outstation address)."""
    try:
        endpoint, _, outstation = address.partition("/")
        host, _, port = endpoint.rpartition(":")
        return host or "127.0.0.1", int(port), int(outstation or 1)
    except ValueError as exc:
        raise ValueError(f"DNP3 address {address!r} is not host:port/outstation") from exc


class _Session(DeviceSession):
    def __init__(self, adapter: Dnp3Adapter, der: Der) -> None:
        super().__init__(der)
        self.adapter = adapter
        host, port, outstation = parse_address(der.address)
        settings = adapter.settings
        self.master = Dnp3Master(
            host,
            port,
            outstation_address=outstation,
            master_address=settings.master_address,
            response_timeout=settings.response_timeout_s,
        )

    async def close(self) -> None:
        await self.master.close()

    async def run(self) -> None:
        ctx, settings = self.adapter.context, self.adapter.settings
        while True:
            try:
                await self._connected_loop()
            except (MasterRunnerError, ChannelError, OSError) as exc:
                logger.warning("DNP3 %s (%s): %s", self.der.id, self.der.address, exc)
                if self.online:
                    self.online = False
                    await ctx.publish_status(self.der.id, False, str(exc))
            await self.master.close()
            await asyncio.sleep(settings.reconnect_delay_s)

    async def _connected_loop(self) -> None:
        ctx, settings = self.adapter.context, self.adapter.settings
        loop = asyncio.get_running_loop()
        await self.master.open()
        await self._integrity()
        if settings.unsolicited:
            await self.master.enable_unsolicited()
        self.online = True
        await ctx.publish_status(self.der.id, True, "connected")
        await self.publish()
        next_integrity = loop.time() + settings.integrity_interval_s
        while True:
            until = loop.time() + settings.event_poll_interval_s
            while (remaining := until - loop.time()) > 0:
                if await self.master.listen_unsolicited(min(0.25, remaining)) is not None:
                    await self.publish()
            if loop.time() >= next_integrity:
                await self._integrity()
                next_integrity = loop.time() + settings.integrity_interval_s
            else:
                await self.master.class_poll()
            await self.publish()

    async def _integrity(self) -> None:
        infos = await self.master.integrity_poll()
        if Dnp3Master.needs_time(infos):
            await self.master.write_time(self.adapter.context.clock.now())
        if Dnp3Master.restarted(infos):
            await self.master.clear_restart()
        if self.adapter.settings.float_reads:
            await self.master.read(*self.adapter.settings.float_reads)

    def _engineering(self, uid: str) -> tuple[float | None, bool]:
        point = self.adapter.point_map.get(PointKind.ANALOG_INPUT, uid)
        value = self.master.values.get((ValueKind.ANALOG_INPUT, point.index))
        if value is None or value.value == NOT_SET:
            return None, True
        return point.to_engineering(value.value), value.online

    def telemetry(self) -> Telemetry:
        fields: dict[str, float | None] = {}
        all_online = True
        for name, uid in (
            ("p_w", AI_ACTIVE_POWER),
            ("q_var", AI_REACTIVE_POWER),
            ("f_hz", AI_FREQUENCY),
            ("v_v", AI_VOLTAGE_A),
            ("soc", AI_SOC),
        ):
            value, online = self._engineering(uid)
            all_online &= online
            fields[name] = value
        if fields["soc"] is not None:
            fields["soc"] = min(1.0, max(0.0, fields["soc"] / 100.0))
        for name in ("f_hz", "v_v"):
            if fields[name] is not None and fields[name] < 0:
                fields[name] = None
        quality = DataQuality.GOOD if all_online else DataQuality.QUESTIONABLE
        return Telemetry(der_id=self.der.id, ts=self.adapter.context.clock.now(), quality=quality, **fields)

    async def publish(self) -> None:
        await self.adapter.context.publish_telemetry([self.telemetry()])


class Dnp3Adapter(SessionAdapter[_Session]):
    """DNP3 master adapter for IEEE 1815.2 plant controllers."""

    protocol: ClassVar[str] = "dnp3"
    native_controls: ClassVar[frozenset[ControlKind]] = frozenset(
        {
            ControlKind.ACTIVE_POWER_LIMIT,
            ControlKind.GENERATION_LIMIT,
            ControlKind.ACTIVE_POWER_TARGET,
            ControlKind.FIXED_ACTIVE_POWER,
            ControlKind.CHARGE_DISCHARGE,
            ControlKind.FIXED_REACTIVE_POWER,
            ControlKind.FIXED_POWER_FACTOR,
            ControlKind.CONNECT,
        }
    )

    def __init__(self, context: AdapterContext, settings: Dnp3Settings | None = None) -> None:
        super().__init__(context)
        self.settings = settings or Dnp3Settings()
        self.point_map: PointMap = mesa_der_map(self.settings.profile)

    def open_session(self, der: Der) -> _Session:
        return _Session(self, der)

    async def send(self, command: NativeCommand) -> None:
        session = self.session(command.der_id)
        payload = command.payload
        if not isinstance(payload, Dnp3Command):
            raise TypeError(f"DNP3 adapter needs a Dnp3Command payload, got {type(payload).__name__}")
        slot = frozenset(c.index for c in payload.revert or payload.crobs) or frozenset(
            ("AO", a.index) for a in payload.analogs
        )

        async def deliver() -> bool:
            return await self._deliver(session, command, payload)

        async def revert() -> str | None:
            try:
                await session.master.operate(crobs=payload.revert, mode=payload.mode)
            except (CommandRejected, MasterRunnerError, ChannelError, OSError) as exc:
                return str(exc)
            return None

        await self.windows.submit(command, slot, deliver, revert if payload.revert else None)

    async def _deliver(self, session: _Session, command: NativeCommand, payload: Dnp3Command) -> bool:
        ctx = self.context
        if not session.master.is_open:
            await ctx.report_command(command.command_id, command.der_id, CommandState.FAILED, "not connected")
            return False
        await ctx.report_command(command.command_id, command.der_id, CommandState.SENT, payload.mode.value)
        try:
            echoes = await session.master.operate(
                crobs=payload.crobs, analogs=payload.analogs, mode=payload.mode
            )
        except CommandRejected as exc:
            await ctx.report_command(command.command_id, command.der_id, CommandState.FAILED, str(exc))
            return False
        except (MasterRunnerError, ChannelError, OSError) as exc:
            await ctx.report_command(command.command_id, command.der_id, CommandState.FAILED, f"link: {exc}")
            return False
        detail = ", ".join(f"g{e.group}#{e.index} {e.status.name}" for e in echoes)
        await ctx.report_command(command.command_id, command.der_id, CommandState.ACKNOWLEDGED, detail)
        if payload.verify:
            await self._verify(session, command, payload)
        return True

    async def _verify(self, session: _Session, command: NativeCommand, payload: Dnp3Command) -> None:
        group = {ValueKind.ANALOG_INPUT: 30, ValueKind.BINARY_INPUT: 1, ValueKind.BINARY_OUTPUT: 10}
        mismatched: list[str] = []
        try:
            for kind, index, expected in payload.verify:
                await session.master.read_range(group.get(kind, 40), 0, index, index)
                got = session.master.values.get((kind, index))
                if got is None or abs(got.value - expected) > 1e-6 * max(1.0, abs(expected)):
                    mismatched.append(
                        f"{kind}{index}={None if got is None else got.value} (expected {expected})"
                    )
        except (MasterRunnerError, ChannelError, OSError) as exc:
            mismatched.append(f"read-back failed: {exc}")
        if mismatched:
            logger.warning(
                "DNP3 %s command %s not reflected: %s", command.der_id, command.command_id, mismatched
            )
            return
        await self.context.report_command(
            command.command_id, command.der_id, CommandState.ACTIVE, "read back"
        )
        await session.publish()


def create_adapter(context: AdapterContext, settings: Dnp3Settings | None = None) -> Dnp3Adapter:
    return Dnp3Adapter(context, settings)
