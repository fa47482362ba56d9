"""A hostile outstation on a raw socket: garbage, corrupted CRCs, unparseable objects,
a frame cut off by a disconnect. The master survives, logs, and keeps what it received."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

import pytest
from dnp3.datalink.builder import build_unconfirmed_user_data

from derms.adapters.dnp3.master import Dnp3Master, LinkError, ValueKind

pytestmark = pytest.mark.timeout(30)
OUTSTATION, MASTER = 10, 1


def frame(app: bytes, seq: int = 0) -> bytes:
    """One link frame carrying a whole application fragment in one transport segment."""
    segment = bytes([0xC0 | seq]) + app  # FIR | FIN | transport sequence (IEEE 1815-2012 8.2)
    return build_unconfirmed_user_data(MASTER, OUTSTATION, False, segment).to_bytes()


def unsolicited(seq: int, *blocks: bytes) -> bytes:
    """UNSOLICITED_RESPONSE (0x82): FIR | FIN | UNS, no CON, IIN 0 (4.2.2.4)."""
    return bytes([0xD0 | seq, 0x82, 0x00, 0x00]) + b"".join(blocks)


def float_event(index: int, value: float) -> bytes:
    """g32v5 (32-bit float analog event without time), qualifier 0x17, flags ONLINE."""
    return bytes([32, 5, 0x17, 1, index, 0x01]) + struct.pack("<f", value)


UNKNOWN_OBJECT = bytes([99, 1, 0x17, 1, 0]) + b"\x00\x00\x00\x00"


async def serve(script: Callable[[asyncio.StreamWriter], bytes]) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(64)  # the master's RESET_LINK_STATE
        writer.write(script(writer))
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.close()  # disconnect, possibly mid-frame

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def drain(master: Dnp3Master) -> LinkError:
    for _ in range(50):
        try:
            await master.listen_unsolicited(0.2)
        except LinkError as exc:
            return exc
    raise AssertionError("the peer's disconnect was never reported")


async def test_garbage_bad_crc_truncated_fragment_and_mid_frame_disconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = frame(unsolicited(0, float_event(0, 1.5)))
    corrupted = bytearray(frame(unsolicited(1, float_event(1, 99.0))))
    corrupted[12] ^= 0xFF  # a data octet: the block CRC no longer matches
    truncated = frame(unsolicited(2, float_event(2, 2.5), UNKNOWN_OBJECT, float_event(3, 3.5)))
    later = frame(unsolicited(3, float_event(4, 4.5)))
    cut = frame(unsolicited(4, float_event(5, 5.5)))[:-6]

    def script(_: asyncio.StreamWriter) -> bytes:
        return b"\x00\xff garbage \x05" + good + bytes(corrupted) + truncated + later + cut

    server, port = await serve(script)
    caplog.set_level(logging.WARNING)
    try:
        master = Dnp3Master("127.0.0.1", port, outstation_address=OUTSTATION, master_address=MASTER)
        await master.open()
        error = await drain(master)
    finally:
        server.close()
        await server.wait_closed()
    assert "closed" in str(error)
    values = {k[1]: v.value for k, v in master.values.items() if k[0] is ValueKind.ANALOG_INPUT}
    # Everything that arrived intact is kept: 1.5, 2.5 (before the unknown object), 4.5.
    assert values == {0: 1.5, 2: 2.5, 4: 4.5}
    assert master.truncated_fragments == 1
    assert "group 99" in caplog.text
    assert not master.is_open


async def test_reconnect_after_disconnect_keeps_cache() -> None:
    def script(_: asyncio.StreamWriter) -> bytes:
        return frame(unsolicited(0, float_event(7, 7.25)))

    server, port = await serve(script)
    try:
        master = Dnp3Master("127.0.0.1", port, outstation_address=OUTSTATION, master_address=MASTER)
        await master.open()
        await drain(master)
        await master.close()
        await master.open()  # a new connection on the same session
        await drain(master)
    finally:
        server.close()
        await server.wait_closed()
    assert master.values[(ValueKind.ANALOG_INPUT, 7)].value == 7.25
