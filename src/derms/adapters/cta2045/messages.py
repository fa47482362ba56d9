"""Application messages the ``cta2045`` package does not build.

The package encodes the Basic DR commands and Advanced Load Up and decodes replies, but has
no Get CommodityRead request, no application ACK/NAK and no SGD-side replies. These follow
CTA-2045-B clause 10 (Basic DR: two payload octets, application ACK ``0x03 <opcode1>`` and
NAK ``0x04 <reason>``, state query response ``0x13 <state>``) and clause 11 / CTA-2045.3
(Intermediate DR: Get CommodityRead request ``0x06 0x00``, reply ``0x06 0x80 <code>`` then
13-octet records of code and two 48-bit big-endian values).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cta2045.app import AdvancedLoadUp, BasicDR
from cta2045.codec import build_frame
from cta2045.enums import BasicDRCategory, CommodityCode, IntermediateDRCategory, OperationalState

BASIC_DR = (0x08, 0x01)
INTERMEDIATE_DR = (0x08, 0x02)
REPLY = 0x80
COMMODITY = IntermediateDRCategory.Consumption_Production.value
MAX_48BIT = (1 << 48) - 1


class AppNakReason:
    """Application NAK reasons (CTA-2045-B Table 10-x)."""

    NO_REASON = 0x00
    OPCODE1_NOT_SUPPORTED = 0x01
    OPCODE2_INVALID = 0x02
    BUSY = 0x03
    LENGTH_INVALID = 0x04


def basic(category: BasicDRCategory, opcode2: int = 0) -> bytes:
    return BasicDR(category, opcode2).to_bytes()


def app_ack(opcode1: int) -> bytes:
    return build_frame(*BASIC_DR, bytes([BasicDRCategory.ACK.value, opcode1]))


def app_nak(reason: int) -> bytes:
    return build_frame(*BASIC_DR, bytes([BasicDRCategory.NAK.value, reason]))


def state_query_response(state: OperationalState) -> bytes:
    return basic(BasicDRCategory.State_Query_Response, state.value)


def commodity_read_request() -> bytes:
    """Get CommodityRead request, UCM → SGD."""
    return build_frame(*INTERMEDIATE_DR, bytes([COMMODITY, 0x00]))


@dataclass(frozen=True, slots=True)
class CommodityRecord:
    code: CommodityCode
    instantaneous: int
    """Rate: W for electricity."""
    cumulative: int
    """Amount: Wh for electricity and for the energy-storage codes."""


def _u48(value: int) -> bytes:
    if not 0 <= value <= MAX_48BIT:
        raise ValueError(f"{value} does not fit a 48-bit commodity field")
    return struct.pack(">HHH", value >> 32, (value >> 16) & 0xFFFF, value & 0xFFFF)


def commodity_read_reply(records: list[CommodityRecord], response_code: int = 0) -> bytes:
    """Get CommodityRead reply, SGD → UCM."""
    body = bytearray([COMMODITY, REPLY, response_code])
    for record in records:
        body += bytes([record.code.value]) + _u48(record.instantaneous) + _u48(record.cumulative)
    return build_frame(*INTERMEDIATE_DR, bytes(body))


def advanced_load_up_reply(response_code: int = 0) -> bytes:
    """SetAdvancedLoadUp reply, SGD → UCM (response code only)."""
    return AdvancedLoadUp(opcode2=REPLY, response_code=response_code).to_bytes()
