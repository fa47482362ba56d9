"""CTA-2045 wire format checked against implementations we did not write.

No independent CTA-2045 link layer installs here (EPRI's UCM library is C++; the PyPI
packages ``cta2045`` and ``cta2045-proxy`` leave the link layer unimplemented), so the
check is on bytes: messages our SGD and UCM put on the wire must equal the application
ACK messages in EPRI's checksum tests byte for byte, and the ``cta2045`` package must
decode what we encode."""

from __future__ import annotations

import pytest
from cta2045 import app
from cta2045.app import BasicDR, CommodityReadReply, IntermediateDR
from cta2045.enums import BasicDRCategory, CommodityCode, OperationalState

from derms.adapters.cta2045.link import Data, Deframer, seal
from derms.adapters.cta2045.messages import (
    CommodityRecord,
    app_ack,
    commodity_read_reply,
    state_query_response,
)

pytestmark = pytest.mark.interop

# epri-dev/CTA-2045-UCM-CPP-Library, test/test/unit/ChecksumUnitTest.cpp: application ACKs
# of Comm Status (0x0e), Grid Emergency (0x0b), Present Relative Price (0x07), Shed (0x01).
EPRI_APP_ACKS = {
    0x0E: "08010002030ee94f",
    0x0B: "08010002030bef4c",
    0x07: "080100020307f748",
    0x01: "0801000203010442",
}


@pytest.mark.parametrize(("opcode", "wire"), sorted(EPRI_APP_ACKS.items()))
def test_our_application_acks_equal_epri_bytes(opcode: int, wire: str) -> None:
    assert seal(app_ack(opcode)).hex() == wire
    (event,) = Deframer().feed(bytes.fromhex(wire))
    assert isinstance(event, Data)
    message, _ = app.decode(event.frame)
    assert (
        isinstance(message, BasicDR) and message.category is BasicDRCategory.ACK and message.opcode2 == opcode
    )


def test_cta2045_package_decodes_our_sgd_replies() -> None:
    records = [
        CommodityRecord(CommodityCode.Electricity_Consumed, 4500, 2**40 + 7),
        CommodityRecord(CommodityCode.Present_Energy_Storage, 0, 6183),
    ]
    message, _ = app.decode(commodity_read_reply(records))
    assert isinstance(message, IntermediateDR) and isinstance(message.body, CommodityReadReply)
    assert [(r.code, r.instantaneous, r.cumulative) for r in message.body.reports] == [
        (CommodityCode.Electricity_Consumed, 4500, 2**40 + 7),
        (CommodityCode.Present_Energy_Storage, 0, 6183),
    ]
    state, _ = app.decode(state_query_response(OperationalState.Running_Curtailed))
    assert isinstance(state, BasicDR) and state.operational_state is OperationalState.Running_Curtailed
