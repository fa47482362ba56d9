"""Control objects on the wire: CROB (group 12 var 1) and analog output blocks (group 41).

dnp3py's command builder always encodes analog outputs as 32-bit integers (g41v1) and does
not decode the status the outstation echoes back, so derms encodes and decodes control
objects itself (IEEE 1815-2012 clause A.8.1 CROB, A.20 analog output block; echoed status
per 4.4.4 and Table 11-16 / dnp3py ``CommandStatus``). Objects are sent with index prefixes:
qualifier 0x17 (1-octet count and index) or 0x28 (2-octet count and index).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum

from dnp3.application.fragment import ObjectBlock
from dnp3.application.qualifiers import ObjectHeader
from dnp3.core.enums import CommandStatus, ControlCode

CROB_GROUP = 12
AO_GROUP = 41
_Q_1OCTET = 0x17
_Q_2OCTET = 0x28
_CROB = struct.Struct("<BBIIB")


class AnalogVariation(IntEnum):
    """Group 41 variations (IEEE 1815-2012 A.20)."""

    INT32 = 1
    INT16 = 2
    FLOAT32 = 3
    FLOAT64 = 4


_AO_FORMAT: dict[AnalogVariation, struct.Struct] = {
    AnalogVariation.INT32: struct.Struct("<iB"),
    AnalogVariation.INT16: struct.Struct("<hB"),
    AnalogVariation.FLOAT32: struct.Struct("<fB"),
    AnalogVariation.FLOAT64: struct.Struct("<dB"),
}
_INT_RANGE = {
    AnalogVariation.INT32: (-(2**31), 2**31 - 1),
    AnalogVariation.INT16: (-(2**15), 2**15 - 1),
}


@dataclass(frozen=True, slots=True)
class Crob:
    """Control relay output block for binary output ``index`` (A.8.1)."""

    index: int
    code: int = int(ControlCode.LATCH_ON)
    count: int = 1
    on_time_ms: int = 0
    off_time_ms: int = 0


@dataclass(frozen=True, slots=True)
class AnalogOutput:
    """Analog output block for analog output ``index`` (A.20)."""

    index: int
    value: float
    variation: AnalogVariation = AnalogVariation.FLOAT32


@dataclass(frozen=True, slots=True)
class Echo:
    """One control object as the outstation echoed it, with its status."""

    group: int
    index: int
    status: CommandStatus
    value: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == CommandStatus.SUCCESS


def wire_value(value: float, variation: AnalogVariation) -> float:
    """The value the variation can carry: integers round half away from zero, floats to
    single precision. Raises ``ValueError`` if it does not fit."""
    if not math.isfinite(value):
        raise ValueError(f"analog output value {value} is not finite")
    if variation in _INT_RANGE:
        low, high = _INT_RANGE[variation]
        rounded = math.floor(value + 0.5) if value >= 0 else math.ceil(value - 0.5)
        if not low <= rounded <= high:
            raise ValueError(f"{value} does not fit group 41 variation {int(variation)}")
        return float(rounded)
    if variation is AnalogVariation.FLOAT32:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    return value


def _qualifier(indices: list[int]) -> int:
    if any(not 0 <= i <= 0xFFFF for i in indices):
        raise ValueError("DNP3 point indices must be in 0..65535")
    return _Q_1OCTET if max(indices) <= 0xFF and len(indices) <= 0xFF else _Q_2OCTET


def _prefix(qualifier: int, value: int) -> bytes:
    return value.to_bytes(1 if qualifier == _Q_1OCTET else 2, "little")


def encode_crobs(crobs: list[Crob]) -> ObjectBlock:
    """Encode CROBs as one g12v1 block with index prefixes."""
    qualifier = _qualifier([c.index for c in crobs])
    data = bytearray(_prefix(qualifier, len(crobs)))
    for c in crobs:
        data += _prefix(qualifier, c.index)
        data += _CROB.pack(c.code, c.count, c.on_time_ms, c.off_time_ms, 0)
    return ObjectBlock(
        header=ObjectHeader(group=CROB_GROUP, variation=1, qualifier=qualifier), data=bytes(data)
    )


def encode_analog_outputs(outputs: list[AnalogOutput]) -> list[ObjectBlock]:
    """Encode analog outputs, one g41 block per variation, in first-seen order."""
    blocks: list[ObjectBlock] = []
    for variation in dict.fromkeys(o.variation for o in outputs):
        group = [o for o in outputs if o.variation is variation]
        qualifier = _qualifier([o.index for o in group])
        fmt = _AO_FORMAT[variation]
        data = bytearray(_prefix(qualifier, len(group)))
        for o in group:
            value = wire_value(o.value, variation)
            data += _prefix(qualifier, o.index)
            data += fmt.pack(int(value) if variation in _INT_RANGE else value, 0)
        header = ObjectHeader(group=AO_GROUP, variation=int(variation), qualifier=qualifier)
        blocks.append(ObjectBlock(header=header, data=bytes(data)))
    return blocks


def _status(octet: int) -> CommandStatus:
    try:
        return CommandStatus(octet & 0x7F)
    except ValueError:
        return CommandStatus.UNDEFINED


def decode_echoes(blocks: list[ObjectBlock]) -> list[Echo]:
    """Decode the control objects echoed in a SELECT/OPERATE response.

    Blocks of other groups are ignored; a block whose length does not match its count
    raises ``ValueError`` (the response is malformed, the command outcome unknown).
    """
    echoes: list[Echo] = []
    for block in blocks:
        h = block.header
        if h.group not in (CROB_GROUP, AO_GROUP) or h.qualifier not in (_Q_1OCTET, _Q_2OCTET):
            continue
        width = 1 if h.qualifier == _Q_1OCTET else 2
        data = block.data
        count = int.from_bytes(data[:width], "little")
        if h.group == CROB_GROUP:
            size = _CROB.size
        else:
            fmt = _AO_FORMAT.get(AnalogVariation(h.variation)) if h.variation in range(1, 5) else None
            if fmt is None:
                raise ValueError(f"unknown analog output variation {h.variation}")
            size = fmt.size
        if len(data) != width + count * (width + size):
            raise ValueError(f"g{h.group}v{h.variation} echo of {count} objects has {len(data)} octets")
        pos = width
        for _ in range(count):
            index = int.from_bytes(data[pos : pos + width], "little")
            body = data[pos + width : pos + width + size]
            pos += width + size
            if h.group == CROB_GROUP:
                echoes.append(Echo(CROB_GROUP, index, _status(_CROB.unpack(body)[4])))
            else:
                value, status = fmt.unpack(body)
                echoes.append(Echo(AO_GROUP, index, _status(status), float(value)))
    return echoes
