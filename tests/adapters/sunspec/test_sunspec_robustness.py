"""A misbehaving link between master and device: truncated, corrupted and dropped Modbus frames.

A small TCP proxy sits between the adapter and a simulated inverter and damages the device's
answers on demand. The master must time out, log, report the device offline, reconnect, and
keep every sample it already published.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from derms.adapters.base import AdapterContext
from derms.adapters.sunspec import SunSpecAdapter, SunSpecSettings
from derms.bus import MemoryBus
from derms.bus.base import Message
from derms.core.clock import SystemClock
from derms.core.der import Capabilities, Der, DerKind
from derms.sim.protocols.sunspec import SunSpecDeviceServer, pv_inverter


class DamagingProxy:
    """Forwards Modbus TCP both ways; ``mode`` damages device->master frames."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "pass"
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            while request := await reader.read(260):
                up_writer.write(request)
                await up_writer.drain()
                answer = await up_reader.read(512)
                match self.mode:
                    case "truncate":  # half a frame, then the peer disconnects mid-message
                        writer.write(answer[: len(answer) // 2])
                        await writer.drain()
                        return
                    case "corrupt":  # wrong protocol id and length in the MBAP header
                        writer.write(answer[:2] + b"\x12\x34\xff\xff" + answer[6:])
                    case "garbage":
                        writer.write(b"\xde\xad\xbe\xef" * 4)
                    case "silent":
                        pass
                    case _:
                        writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            up_writer.close()


@pytest.fixture
async def rig() -> AsyncIterator[tuple[SunSpecAdapter, DamagingProxy, list[Message], MemoryBus]]:
    clock = SystemClock()
    device = SunSpecDeviceServer(*pv_inverter("PV-R", 10_000, 6_000), clock)
    await device.start()
    proxy = DamagingProxy(device.port)
    port = await proxy.start()
    bus = MemoryBus()
    seen: list[Message] = []

    async def keep(message: Message) -> None:
        seen.append(message)

    await bus.subscribe(">", keep)
    adapter = SunSpecAdapter(AdapterContext(bus=bus, clock=clock, protocol="sunspec"),
                             SunSpecSettings(timeout_s=0.3, retries=0))  # fmt: skip
    await adapter.register_device(
        Der(
            id="pv",
            site_id="s",
            kind=DerKind.PV_INVERTER,
            protocol="sunspec",
            address=f"127.0.0.1:{port}",
            tenant_id="t",
            capabilities=Capabilities(w_max=10_000),
        )
    )
    yield adapter, proxy, seen, bus
    await adapter.stop()
    await proxy.stop()
    await device.stop()
    await bus.close()


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "garbage", "silent"])
async def test_damaged_answers_are_survived_and_nothing_is_lost(
    rig: tuple[SunSpecAdapter, DamagingProxy, list[Message], MemoryBus],
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter, proxy, seen, bus = rig
    caplog.set_level(logging.WARNING, logger="derms.adapters.sunspec")
    assert (await adapter.poll_once("pv")) is not None
    proxy.mode = damage
    assert (await adapter.poll_once("pv")) is None
    assert (await adapter.poll_once("pv")) is None
    proxy.mode = "pass"
    recovered = await adapter.poll_once("pv")
    assert recovered is not None and recovered.p_w == pytest.approx(6000)
    await bus.drain()
    assert [m.data["p_w"] for m in seen if m.subject == "telemetry.sunspec"] == [[6000.0], [6000.0]]
    status = [m.data["online"] for m in seen if m.subject == "der.status.sunspec"]
    assert status == [True, False, True]  # the repeated failure is not reported twice
    assert any("poll failed" in r.getMessage() for r in caplog.records)
