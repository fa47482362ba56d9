"""The CTA-2045-B link layer over a byte stream (TCP socket or serial line).

Serial lines (RS-485 adapters, or a pty in tests) are opened raw with :func:`open_serial`;
line settings such as the 19200 baud of CTA-2045-B RS-485 belong to the device.

A data message on the wire is ``type (2) | payload length (2, big-endian) | payload |
checksum (2)``; the ``cta2045`` package encodes and decodes everything but the checksum.
The receiver answers every data message with a two-octet link ACK ``06 00`` or NAK
``15 <reason>`` (CTA-2045-B clause 6; message type ranges 0x06xx and 0x15xx are reserved
for them, so a leading 0x06 or 0x15 is never a data message). A sender that gets a NAK or
no ACK within ``ack_timeout_s`` retransmits, up to ``retries`` times.

The checksum is the Fletcher-style sum of the MCI specification (CTA-2045-B, checksum
clause): running sums ``c1`` (seeded with 0xAA) and ``c2`` modulo 255 over type, length
and payload; transmitted ``msb = 255 - (c1 + c2) % 255``, ``lsb = 255 - (c1 + msb) % 255``,
so that the same sums over the whole message, checksum included, end at zero. Checked
against three independent implementations (EPRI's CTA-2045 UCM C++ library
``util/Checksum.cpp``, an MCI SPI driver citing MCI-V1-6 p. 68, a Zephyr CTA-2045 module).

Link NAK reasons follow the EPRI library's ``LinkLayerNakCode`` order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import tty
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum

from derms.core.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

ACK = bytes([0x06, 0x00])
_ACK_TYPE = 0x06
_NAK_TYPE = 0x15
_HEADER = 4
_CHECKSUM = 2
SUPPORTED_TYPES = frozenset({(0x08, 0x01), (0x08, 0x02), (0x08, 0x03)})
"""Basic DR, Intermediate DR and Data-Link messages."""


class NakReason(IntEnum):
    NO_REASON = 0
    INVALID_BYTE = 1
    INVALID_LENGTH = 2
    CHECKSUM_ERROR = 3
    RESERVED = 4
    MESSAGE_TIMEOUT = 5
    UNSUPPORTED_MESSAGE_TYPE = 6
    REQUEST_NOT_SUPPORTED = 7


def checksum(data: bytes) -> bytes:
    """The two checksum octets for ``data`` (type, length and payload)."""
    c1, c2 = 0xAA, 0
    for octet in data:
        c1 = (c1 + octet) % 255
        c2 = (c2 + c1) % 255
    msb = 255 - (c1 + c2) % 255
    lsb = 255 - (c1 + msb) % 255
    return bytes([msb, lsb])


def checksum_ok(message: bytes) -> bool:
    """True if ``message`` (checksum included) sums to zero in both running sums."""
    c1, c2 = 0xAA, 0
    for octet in message:
        c1 = (c1 + octet) % 255
        c2 = (c2 + c1) % 255
    return c1 == 0 and c2 == 0


def seal(frame: bytes) -> bytes:
    """Append the checksum to a ``cta2045`` frame (type, length, payload)."""
    return frame + checksum(frame)


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class Nak:
    reason: int


@dataclass(frozen=True, slots=True)
class Data:
    frame: bytes
    """Type, length and payload, checksum verified and removed (a ``cta2045`` frame)."""


@dataclass(frozen=True, slots=True)
class Bad:
    reason: NakReason
    discarded: int
    detail: str


type LinkEvent = Ack | Nak | Data | Bad


@dataclass
class Deframer:
    """Splits a byte stream into link events. Incomplete messages wait for more bytes."""

    max_payload: int = 4096
    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[LinkEvent]:
        self.buffer += data
        events: list[LinkEvent] = []
        while self.buffer:
            first = self.buffer[0]
            if first in (_ACK_TYPE, _NAK_TYPE):
                if len(self.buffer) < 2:
                    break
                events.append(Ack() if first == _ACK_TYPE else Nak(self.buffer[1]))
                del self.buffer[:2]
                continue
            if len(self.buffer) < _HEADER:
                break
            length = int.from_bytes(self.buffer[2:4], "big")
            if length > self.max_payload:
                dropped = len(self.buffer)
                self.buffer.clear()
                events.append(
                    Bad(NakReason.INVALID_LENGTH, dropped, f"payload length {length} > {self.max_payload}")
                )
                break
            total = _HEADER + length + _CHECKSUM
            if len(self.buffer) < total:
                break
            message = bytes(self.buffer[:total])
            del self.buffer[:total]
            if not checksum_ok(message):
                events.append(Bad(NakReason.CHECKSUM_ERROR, total, f"checksum mismatch in {message.hex()}"))
                continue
            if (message[0], message[1]) not in SUPPORTED_TYPES:
                events.append(
                    Bad(
                        NakReason.UNSUPPORTED_MESSAGE_TYPE,
                        total,
                        f"message type {message[0]:02x}{message[1]:02x}",
                    )
                )
                continue
            events.append(Data(message[:-_CHECKSUM]))
        return events

    def discard_partial(self) -> int:
        dropped = len(self.buffer)
        self.buffer.clear()
        return dropped


class LinkError(Exception):
    """A message could not be delivered (NAKed or unacknowledged after every retry, or closed)."""


@dataclass
class LinkStats:
    sent: int = 0
    retransmissions: int = 0
    received: int = 0
    naks_sent: dict[str, int] = field(default_factory=dict)
    naks_received: dict[str, int] = field(default_factory=dict)
    discarded_octets: int = 0


class LinkEndpoint:
    """One end of a CTA-2045 link over asyncio streams (the UCM or the SGD side).

    Received data messages are link-ACKed after they are queued in :attr:`inbox` (or handed
    to ``on_message``), so an acknowledged message is never lost; bad ones are NAKed with
    the reason and logged. :meth:`send` keeps one message outstanding at a time.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        name: str = "cta2045",
        ack_timeout_s: float = 0.5,
        retries: int = 2,
        message_timeout_s: float = 1.0,
        on_message: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.ack_timeout_s = ack_timeout_s
        self.retries = retries
        self.message_timeout_s = message_timeout_s
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.stats = LinkStats()
        self.closed = asyncio.Event()
        self._reader = reader
        self._writer = writer
        self._on_message = on_message
        self._deframer = Deframer()
        self._send_lock = asyncio.Lock()
        self._reply: asyncio.Future[Ack | Nak] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._receive(), name=f"{self.name}-link")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        self._finish("closed locally")

    def _finish(self, why: str) -> None:
        if not self.closed.is_set():
            logger.info("%s link closed: %s", self.name, why)
        self.closed.set()
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(LinkError(f"link closed: {why}"))

    async def _write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def _nak(self, reason: NakReason) -> None:
        self.stats.naks_sent[reason.name] = self.stats.naks_sent.get(reason.name, 0) + 1
        await self._write(bytes([_NAK_TYPE, int(reason)]))

    async def _receive(self) -> None:
        try:
            while True:
                wait = self.message_timeout_s if self._deframer.buffer else None
                try:
                    data = await asyncio.wait_for(self._reader.read(4096), wait)
                except TimeoutError:
                    dropped = self._deframer.discard_partial()
                    self.stats.discarded_octets += dropped
                    logger.warning(
                        "%s: message incomplete after %.1f s, %d octets discarded", self.name, wait, dropped
                    )
                    await self._nak(NakReason.MESSAGE_TIMEOUT)
                    continue
                if not data:
                    dropped = self._deframer.discard_partial()
                    if dropped:
                        self.stats.discarded_octets += dropped
                        logger.warning(
                            "%s: peer disconnected mid-message, %d octets discarded", self.name, dropped
                        )
                    self._finish("peer disconnected")
                    return
                for event in self._deframer.feed(data):
                    await self._handle(event)
        except (ConnectionError, OSError) as exc:
            self._finish(f"connection error: {exc}")

    async def _handle(self, event: LinkEvent) -> None:
        match event:
            case Ack() | Nak():
                if isinstance(event, Nak):
                    name = (
                        NakReason(event.reason).name if event.reason in iter(NakReason) else str(event.reason)
                    )
                    self.stats.naks_received[name] = self.stats.naks_received.get(name, 0) + 1
                if self._reply is not None and not self._reply.done():
                    self._reply.set_result(event)
                else:
                    logger.warning("%s: unexpected link %s", self.name, event)
            case Data(frame=frame):
                self.stats.received += 1
                if self._on_message is not None:
                    await self._on_message(frame)
                else:
                    self.inbox.put_nowait(frame)
                await self._write(ACK)
            case Bad(reason=reason, discarded=discarded, detail=detail):
                self.stats.discarded_octets += discarded
                logger.warning("%s: bad message (%s): %s", self.name, reason.name, detail)
                await self._nak(reason)

    async def send(self, frame: bytes) -> None:
        """Send a ``cta2045`` frame and wait for the link ACK, retransmitting on NAK or
        timeout. Raises :class:`LinkError` when every attempt fails."""
        message = seal(frame)
        async with self._send_lock:
            last = "no reply"
            for attempt in range(self.retries + 1):
                if self.closed.is_set():
                    raise LinkError("link is closed")
                if attempt:
                    self.stats.retransmissions += 1
                self._reply = asyncio.get_running_loop().create_future()
                try:
                    await self._write(message)
                    reply = await asyncio.wait_for(self._reply, self.ack_timeout_s)
                except TimeoutError:
                    last = f"no ACK within {self.ack_timeout_s} s"
                    continue
                except (ConnectionError, OSError) as exc:
                    raise LinkError(f"write failed: {exc}") from exc
                finally:
                    self._reply = None
                if isinstance(reply, Ack):
                    self.stats.sent += 1
                    return
                last = f"NAK {reply.reason}"
            raise LinkError(
                f"{self.name}: message {frame[:2].hex()} not acknowledged after {self.retries + 1} attempts ({last})"
            )


class _PipeWriterProtocol(asyncio.streams.FlowControlMixin):
    """Write-side protocol for a serial line: flow control plus the close waiter that
    ``StreamWriter.wait_closed`` needs (``FlowControlMixin`` alone does not provide it)."""

    def __init__(self) -> None:
        super().__init__()
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self._closed.done():
            self._closed.set_result(None)

    def _get_close_waiter(self, stream: asyncio.StreamWriter) -> asyncio.Future[None]:
        return self._closed


async def fd_streams(fd: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams over a serial line's file descriptor (a tty or pty end).

    The line is put in raw mode (no echo, no line discipline) so every octet passes
    unchanged; the reader and the writer each own a duplicate of ``fd``.
    """
    with contextlib.suppress(termios.error):
        tty.setraw(fd)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    read_file = os.fdopen(os.dup(fd), "rb", buffering=0)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), read_file)
    write_file = os.fdopen(os.dup(fd), "wb", buffering=0)
    transport, protocol = await loop.connect_write_pipe(_PipeWriterProtocol, write_file)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def open_serial(path: str, **kwargs: object) -> LinkEndpoint:
    """Open a serial device (e.g. ``/dev/ttyUSB0`` or a pty) and start the link on it."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        reader, writer = await fd_streams(fd)
    finally:
        os.close(fd)
    link = LinkEndpoint(reader, writer, **kwargs)  # type: ignore[arg-type]
    link.start()
    return link


async def open_tcp(host: str, port: int, **kwargs: object) -> LinkEndpoint:
    """Connect to an SGD (or a UCM listening for one) over TCP and start the link."""
    reader, writer = await asyncio.open_connection(host, port)
    link = LinkEndpoint(reader, writer, **kwargs)  # type: ignore[arg-type]
    link.start()
    return link
