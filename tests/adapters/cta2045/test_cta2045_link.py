"""CTA-2045 link layer: checksum, framing, ACK/NAK, retries, timeouts, hostile peers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from cta2045 import app

from derms.adapters.cta2045.link import (
    ACK,
    Ack,
    Bad,
    Data,
    Deframer,
    LinkEndpoint,
    LinkError,
    Nak,
    NakReason,
    checksum,
    checksum_ok,
    open_tcp,
    seal,
)

pytestmark = pytest.mark.timeout(30)

# Application ACK messages with their checksums, from EPRI's CTA-2045 UCM C++ library
# (epri-dev/CTA-2045-UCM-CPP-Library, test/test/unit/ChecksumUnitTest.cpp).
EPRI_VECTORS = ["08010002030ee94f", "08010002030bef4c", "080100020307f748", "0801000203010442"]


@pytest.mark.parametrize("vector", EPRI_VECTORS)
def test_checksum_matches_published_vectors(vector: str) -> None:
    message = bytes.fromhex(vector)
    assert checksum(message[:-2]) == message[-2:]
    assert checksum_ok(message)


def test_checksum_rejects_the_published_bad_vector() -> None:
    assert not checksum_ok(bytes.fromhex("0801000203020442"))


def test_deframer_reassembles_split_messages_and_recovers_after_errors() -> None:
    shed = seal(app.shed(10).to_bytes())
    corrupt = bytearray(shed)
    corrupt[5] ^= 0x01
    deframer = Deframer()
    assert deframer.feed(shed[:3]) == []
    assert deframer.feed(shed[3:] + ACK + bytes([0x15, 0x03])) == [Data(shed[:-2]), Ack(), Nak(3)]
    events = deframer.feed(bytes(corrupt) + shed)
    assert isinstance(events[0], Bad) and events[0].reason is NakReason.CHECKSUM_ERROR
    assert events[1] == Data(shed[:-2])  # the message after the bad one is not lost
    unsupported = seal(bytes([0x09, 0x01, 0x00, 0x00]))
    (event,) = deframer.feed(unsupported)
    assert isinstance(event, Bad) and event.reason is NakReason.UNSUPPORTED_MESSAGE_TYPE
    (event,) = deframer.feed(bytes([0x08, 0x01, 0xFF, 0xFF, 0x00]))
    assert isinstance(event, Bad) and event.reason is NakReason.INVALID_LENGTH
    assert not deframer.buffer


@dataclass
class RawPeer:
    """The far end as raw bytes on a real socket."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def read_exactly(self, n: int) -> bytes:
        async with asyncio.timeout(5):
            return await self.reader.readexactly(n)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


@pytest.fixture
async def pair() -> AsyncIterator[tuple[LinkEndpoint, RawPeer]]:
    accepted: asyncio.Queue[RawPeer] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(RawPeer(reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = await open_tcp("127.0.0.1", port, name="ucm", ack_timeout_s=0.2, retries=2, message_timeout_s=0.3)
    peer = await accepted.get()
    try:
        yield link, peer
    finally:
        await link.close()
        peer.writer.close()
        server.close()
        await server.wait_closed()


async def test_send_retransmits_after_nak(pair: tuple[LinkEndpoint, RawPeer]) -> None:
    link, peer = pair
    frame = app.load_up(60).to_bytes()
    sending = asyncio.create_task(link.send(frame))
    assert await peer.read_exactly(8) == seal(frame)
    await peer.write(bytes([0x15, NakReason.CHECKSUM_ERROR]))
    assert await peer.read_exactly(8) == seal(frame)
    await peer.write(ACK)
    await sending
    assert link.stats.retransmissions == 1
    assert link.stats.naks_received == {"CHECKSUM_ERROR": 1}


async def test_send_gives_up_after_retries_without_ack(pair: tuple[LinkEndpoint, RawPeer]) -> None:
    link, peer = pair
    frame = app.shed().to_bytes()
    with pytest.raises(LinkError, match="3 attempts"):
        await link.send(frame)
    assert await peer.read_exactly(24) == seal(frame) * 3


async def test_bad_checksum_and_timeout_are_naked_and_good_messages_kept(
    pair: tuple[LinkEndpoint, RawPeer],
) -> None:
    link, peer = pair
    good = seal(app.end().to_bytes())
    corrupt = bytearray(good)
    corrupt[-1] ^= 0xFF
    await peer.write(bytes(corrupt))
    assert await peer.read_exactly(2) == bytes([0x15, NakReason.CHECKSUM_ERROR])
    await peer.write(good[:5])  # then silence: the message times out
    assert await peer.read_exactly(2) == bytes([0x15, NakReason.MESSAGE_TIMEOUT])
    await peer.write(good)
    assert await peer.read_exactly(2) == ACK
    assert link.inbox.get_nowait() == good[:-2]
    assert link.stats.discarded_octets == len(good) + 5


async def test_peer_disconnect_mid_message_keeps_what_was_received(
    pair: tuple[LinkEndpoint, RawPeer],
) -> None:
    link, peer = pair
    first = seal(app.shed(5).to_bytes())
    second = seal(app.load_up(5).to_bytes())
    await peer.write(first + second[:4])
    assert await peer.read_exactly(2) == ACK
    sending = asyncio.create_task(link.send(app.end().to_bytes()))
    await peer.read_exactly(8)
    peer.writer.close()
    with pytest.raises(LinkError, match="closed"):
        await sending
    await asyncio.wait_for(link.closed.wait(), 5)
    assert link.inbox.get_nowait() == first[:-2]
    assert link.stats.discarded_octets == 4
