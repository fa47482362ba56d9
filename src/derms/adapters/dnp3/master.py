"""An asyncio DNP3 master session over TCP (IEEE 1815-2012).

The data link (clause 9: framing, CRC-16/DNP), transport (clause 8) and application
fragment parsing come from dnp3py's ``MasterTcpRunner``; derms adds the session a DERMS
needs on top: a point cache fed by integrity and class 1/2/3 event polls and unsolicited
responses (clause 4.1.2, 5.1.5), select-before-operate and direct operate with the echoed
status of every control object decoded (4.4.4, :mod:`derms.adapters.dnp3.codec`), and a
lock that keeps one request outstanding at a time (4.2.2).

DNP3 objects carry no length field, so when a fragment holds an object the parser cannot
size, nothing after it in that fragment can be read (dnp3py reports a ``Truncation``). The
session delivers every value that preceded it, counts the event and logs it with the group
and variation, so an operator sees which point type the outstation must stop sending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from dnp3.application.builder import (
    build_direct_operate_request,
    build_operate_request,
    build_read_request,
    build_select_request,
    build_write_request,
)
from dnp3.application.fragment import ObjectBlock
from dnp3.application.parser import ParseError, parse_response
from dnp3.application.qualifiers import ObjectHeader
from dnp3.core.flags import IIN
from dnp3.master.config import MasterConfig
from dnp3.master.handler import AnalogValue, BinaryValue, CounterValue, ResponseInfo
from dnp3.master.master import Master
from dnp3.master.tcp_runner import LinkError, MasterRunnerError, MasterTcpRunner

from derms.adapters.dnp3.codec import (
    AnalogOutput,
    Crob,
    Echo,
    decode_echoes,
    encode_analog_outputs,
    encode_crobs,
)

logger = logging.getLogger(__name__)

ONLINE = 0x01
_ALL_OBJECTS = 0x06
_START_STOP_1OCTET = 0x00
_COUNT_1OCTET = 0x07
"""Quality flag bit 0 of every static and event object (IEEE 1815-2012 A.2, A.14)."""


class ValueKind(StrEnum):
    BINARY_INPUT = "BI"
    BINARY_OUTPUT = "BO"
    ANALOG_INPUT = "AI"
    ANALOG_OUTPUT = "AO"
    COUNTER = "CTR"
    FROZEN_COUNTER = "FCTR"


@dataclass(frozen=True, slots=True)
class PointValue:
    """A value as received: raw transmission value, DNP3 quality flags, event time if any."""

    kind: ValueKind
    index: int
    value: float
    flags: int
    timestamp: datetime | None
    unsolicited: bool

    @property
    def online(self) -> bool:
        return bool(self.flags & ONLINE)


class OperateMode(StrEnum):
    SELECT_BEFORE_OPERATE = "select_before_operate"
    DIRECT_OPERATE = "direct_operate"


class CommandRejected(Exception):
    """The outstation answered a control with a non-success status."""

    def __init__(self, stage: str, echoes: list[Echo]) -> None:
        bad = ", ".join(f"g{e.group} #{e.index}: {e.status.name}" for e in echoes if not e.ok)
        super().__init__(f"{stage} rejected: {bad or 'no objects echoed'}")
        self.stage = stage
        self.echoes = echoes


class _Handler:
    """dnp3py SOE handler that records every value in arrival order."""

    def __init__(self, sink: Callable[[list[PointValue]], None]) -> None:
        self._sink = sink

    def _emit(
        self, kind: ValueKind, values: Sequence[BinaryValue | AnalogValue | CounterValue], info: ResponseInfo
    ) -> None:
        self._sink(
            [
                PointValue(kind, v.index, float(v.value), int(v.quality), v.timestamp, info.is_unsolicited)
                for v in values
            ]
        )

    def on_binary_input(self, values: list[BinaryValue], info: ResponseInfo) -> None:
        self._emit(ValueKind.BINARY_INPUT, values, info)

    def on_binary_output(self, values: list[BinaryValue], info: ResponseInfo) -> None:
        self._emit(ValueKind.BINARY_OUTPUT, values, info)

    def on_analog_input(self, values: list[AnalogValue], info: ResponseInfo) -> None:
        self._emit(ValueKind.ANALOG_INPUT, values, info)

    def on_analog_output(self, values: list[AnalogValue], info: ResponseInfo) -> None:
        self._emit(ValueKind.ANALOG_OUTPUT, values, info)

    def on_counter(self, values: list[CounterValue], info: ResponseInfo) -> None:
        self._emit(ValueKind.COUNTER, values, info)

    def on_frozen_counter(self, values: list[CounterValue], info: ResponseInfo) -> None:
        self._emit(ValueKind.FROZEN_COUNTER, values, info)


class _RecordingMaster(Master):
    """dnp3py ``Master`` that keeps the object blocks of solicited responses (for the
    echoed control statuses) and counts fragments cut short by an unparseable object."""

    solicited_objects: list[ObjectBlock]
    truncated: int
    malformed: int

    def process_response(self, data: bytes) -> ResponseInfo | None:
        try:
            response = parse_response(data)
        except ParseError as exc:
            self.malformed += 1
            logger.warning("DNP3 response of %d octets did not parse: %s", len(data), exc)
            return None
        if response.truncation is not None:
            self.truncated += 1
        if not response.header.control.uns:
            self.solicited_objects.extend(response.objects)
        return self._process_response_fragment(response)


class Dnp3Master:
    """One master-outstation association over TCP.

    ``on_values`` is called synchronously with each run of values as fragments are parsed
    (polls and unsolicited responses alike); :attr:`values` keeps the latest per point.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        outstation_address: int = 1,
        master_address: int = 1,
        response_timeout: float = 5.0,
        on_values: Callable[[list[PointValue]], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.values: dict[tuple[ValueKind, int], PointValue] = {}
        self._on_values = on_values
        self._lock = asyncio.Lock()
        config = MasterConfig(
            address=master_address,
            outstation_address=outstation_address,
            response_timeout=response_timeout,
        )
        self._master = _RecordingMaster(handler=_Handler(self._record), config=config)
        self._master.solicited_objects = []
        self._master.truncated = 0
        self._master.malformed = 0
        self._runner = MasterTcpRunner(
            master=self._master, host=host, port=port, response_timeout=response_timeout
        )

    @property
    def truncated_fragments(self) -> int:
        """Fragments whose tail could not be parsed (values before it were delivered)."""
        return self._master.truncated

    @property
    def malformed_fragments(self) -> int:
        return self._master.malformed

    @property
    def is_open(self) -> bool:
        return self._runner.is_open

    def _record(self, values: list[PointValue]) -> None:
        for value in values:
            self.values[(value.kind, value.index)] = value
        if self._on_values is not None:
            self._on_values(values)

    async def open(self) -> None:
        await self._runner.open()

    async def close(self) -> None:
        await self._runner.close()

    async def __aenter__(self) -> Dnp3Master:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def integrity_poll(self) -> list[ResponseInfo]:
        """READ class 1, 2, 3 then class 0 (IEEE 1815-2012 5.1.5.2)."""
        async with self._lock:
            return await self._runner.integrity_poll()

    async def class_poll(
        self, *, class_1: bool = True, class_2: bool = True, class_3: bool = True
    ) -> list[ResponseInfo]:
        """READ the named event classes (group 60 variations 2-4)."""
        async with self._lock:
            return await self._runner.class_poll(class_1=class_1, class_2=class_2, class_3=class_3)

    async def read(self, *group_variations: tuple[int, int]) -> list[ResponseInfo]:
        """READ all objects of the given (group, variation) pairs (qualifier 0x06).

        Asking for a variation is how a master gets floating-point values from an
        outstation whose default variation is an integer (e.g. ``(30, 5)`` for 32-bit
        float analog inputs, ``(32, 7)`` for float analog events with time).
        """
        objects = tuple(
            ObjectBlock(header=ObjectHeader(group=g, variation=v, qualifier=_ALL_OBJECTS))
            for g, v in group_variations
        )
        async with self._lock:
            return await self._runner.request(
                build_read_request(objects=objects, seq=self._master.next_request_sequence())
            )

    async def read_range(self, group: int, variation: int, start: int, stop: int) -> list[ResponseInfo]:
        """READ points ``start..stop`` of one group and variation (qualifier 0x00/0x01)."""
        async with self._lock:
            return await self._runner.request(self._master.build_range_poll(group, variation, start, stop))

    async def clear_restart(self) -> list[ResponseInfo]:
        """WRITE g80v1 index 7 = 0 to clear IIN1.7 DEVICE_RESTART (IEEE 1815-2012 5.1.4)."""
        block = ObjectBlock(
            header=ObjectHeader(group=80, variation=1, qualifier=_START_STOP_1OCTET), data=bytes([7, 7, 0])
        )
        async with self._lock:
            return await self._runner.request(
                build_write_request(objects=(block,), seq=self._master.next_request_sequence())
            )

    async def write_time(self, now: datetime) -> list[ResponseInfo]:
        """WRITE g50v1 (absolute time, ms since 1970-01-01 UTC) to answer IIN1.4 NEED_TIME.

        Without a delay measurement (IEEE 1815-2012 5.1.5.7 non-LAN procedure) the
        outstation is off by the one-way latency, which is negligible on a LAN.
        """
        ms = round(now.astimezone(UTC).timestamp() * 1000)
        block = ObjectBlock(
            header=ObjectHeader(group=50, variation=1, qualifier=_COUNT_1OCTET),
            data=bytes([1]) + ms.to_bytes(6, "little"),
        )
        async with self._lock:
            return await self._runner.request(
                build_write_request(objects=(block,), seq=self._master.next_request_sequence())
            )

    @staticmethod
    def restarted(infos: Sequence[ResponseInfo]) -> bool:
        return any(IIN.DEVICE_RESTART in info.iin for info in infos)

    @staticmethod
    def needs_time(infos: Sequence[ResponseInfo]) -> bool:
        return any(IIN.NEED_TIME in info.iin for info in infos)

    async def enable_unsolicited(self) -> list[ResponseInfo]:
        """ENABLE_UNSOLICITED for classes 1-3 (function code 20)."""
        async with self._lock:
            return await self._runner.enable_unsolicited()

    async def listen_unsolicited(self, wait_s: float) -> ResponseInfo | None:
        """Wait up to ``wait_s`` s for one unsolicited response (confirmed when asked)."""
        async with self._lock:
            return await self._runner.listen_unsolicited(timeout=wait_s)

    async def operate(
        self,
        *,
        crobs: Sequence[Crob] = (),
        analogs: Sequence[AnalogOutput] = (),
        mode: OperateMode = OperateMode.SELECT_BEFORE_OPERATE,
    ) -> list[Echo]:
        """Send controls and return the outstation's echo of each object.

        Analog outputs go first, then CROBs, so a setpoint is in place before the CROB that
        enables its mode (IEEE 1815.2 function sequences); the outstation processes objects
        in order (IEEE 1815-2012 4.4.4).

        With select-before-operate the OPERATE follows the SELECT with the next sequence
        number and identical objects (4.4.4.3). Raises :class:`CommandRejected` when any
        echoed status is not SUCCESS, ``MasterRunnerError`` on link failures or timeouts.
        """
        blocks: list[ObjectBlock] = []
        if analogs:
            blocks.extend(encode_analog_outputs(list(analogs)))
        if crobs:
            blocks.append(encode_crobs(list(crobs)))
        if not blocks:
            raise ValueError("a control needs at least one CROB or analog output")
        objects = tuple(blocks)
        n = len(crobs) + len(analogs)
        async with self._lock:
            if mode is OperateMode.SELECT_BEFORE_OPERATE:
                await self._exchange("SELECT", build_select_request, objects, n)
                return await self._exchange("OPERATE", build_operate_request, objects, n)
            return await self._exchange("DIRECT_OPERATE", build_direct_operate_request, objects, n)

    async def _exchange(
        self, stage: str, build: Callable[..., object], objects: tuple[ObjectBlock, ...], expected: int
    ) -> list[Echo]:
        self._master.solicited_objects = []
        request = build(objects=objects, seq=self._master.next_request_sequence())
        await self._runner.request(request)  # type: ignore[arg-type]
        try:
            echoes = decode_echoes(self._master.solicited_objects)
        except ValueError as exc:
            raise MasterRunnerError(f"{stage} response malformed: {exc}") from exc
        if len(echoes) < expected or not all(e.ok for e in echoes):
            raise CommandRejected(stage, echoes)
        return echoes


__all__ = [
    "CommandRejected",
    "Dnp3Master",
    "LinkError",
    "MasterRunnerError",
    "OperateMode",
    "PointValue",
    "ValueKind",
]
