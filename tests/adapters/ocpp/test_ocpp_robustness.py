"""Bad frames, truncated messages and peers that vanish mid-call: survived, logged, nothing lost."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect

from derms.adapters.base import AdapterContext, NativeCommand
from derms.adapters.ocpp import (
    ChargingProfile,
    OcppAdapter,
    OcppSettings,
    ProfilePurpose,
    SchedulePeriod,
    SetProfileCommand,
)
from derms.bus import MemoryBus
from derms.bus.base import Message
from derms.core.clock import SystemClock
from derms.core.der import Capabilities, Der, DerKind


@pytest.fixture
async def rig() -> AsyncIterator[tuple[OcppAdapter, list[Message], MemoryBus]]:
    bus = MemoryBus()
    seen: list[Message] = []

    async def keep(message: Message) -> None:
        seen.append(message)

    await bus.subscribe(">", keep)
    adapter = OcppAdapter(
        AdapterContext(bus=bus, clock=SystemClock(), protocol="ocpp"),
        OcppSettings(port=0, passwords={"RAW": "pw"}, response_timeout_s=2),
    )
    await adapter.register_device(
        Der(
            id="ev",
            site_id="s",
            kind=DerKind.EV_CHARGER,
            protocol="ocpp",
            address="RAW/1",
            tenant_id="t",
            capabilities=Capabilities(w_max_consume=11_000, phases=3),
        )
    )
    await adapter.start()
    yield adapter, seen, bus
    await adapter.stop()
    await bus.close()


def raw_connect(adapter: OcppAdapter, version: str = "ocpp1.6") -> connect:
    token = base64.b64encode(b"RAW:pw").decode()
    return connect(
        f"ws://127.0.0.1:{adapter.csms.port}/ocpp/RAW", subprotocols=[version],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {token}"},
    )  # fmt: skip


async def call(ws: ClientConnection, unique_id: str, action: str, payload: dict) -> list:  # type: ignore[type-arg]
    await ws.send(json.dumps([2, unique_id, action, payload]))
    return json.loads(await ws.recv())


METER = {
    "connectorId": 1,
    "meterValue": [{"timestamp": "2026-01-01T00:00:00Z",
                    "sampledValue": [{"value": "4200", "measurand": "Power.Active.Import", "unit": "W"}]}],
}  # fmt: skip


async def test_bad_frames_are_answered_or_logged_and_the_session_survives(
    rig: tuple[OcppAdapter, list[Message], MemoryBus], caplog: pytest.LogCaptureFixture
) -> None:
    adapter, seen, bus = rig
    caplog.set_level(logging.WARNING)
    async with raw_connect(adapter) as ws:
        boot = await call(ws, "b1", "BootNotification", {"chargePointVendor": "x", "chargePointModel": "y"})
        assert boot[0] == 3 and boot[2]["status"] == "Accepted"
        for frame in ('{"not": "a list"}', '[2, "t1", "Heart', "[]", "[9, 1, 2]", "\x00\xff garbage"):
            await ws.send(frame)
        # schema-invalid call: a CallError comes back (OCPP-J 4.2.3), the session lives on
        error = await call(ws, "e1", "StatusNotification", {"connectorId": "one"})
        assert error[0] == 4 and error[1] == "e1"
        unknown = await call(ws, "e2", "NoSuchAction", {})
        assert unknown[0] == 4
        meter = await call(ws, "m1", "MeterValues", METER)
        assert meter == [3, "m1", {}]
        beat = await call(ws, "h1", "Heartbeat", {})
        assert beat[0] == 3 and "currentTime" in beat[2]
    await bus.drain()
    samples = [m.data for m in seen if m.subject == "telemetry.ocpp"]
    assert samples and samples[0]["p_w"] == [-4200.0]
    assert any("not valid OCPP" in r.getMessage() or "doesn't seem" in r.getMessage() for r in caplog.records)


async def test_peer_vanishing_mid_call_fails_the_command_but_keeps_earlier_data(
    rig: tuple[OcppAdapter, list[Message], MemoryBus],
) -> None:
    adapter, seen, bus = rig
    async with raw_connect(adapter) as ws:
        await call(ws, "b1", "BootNotification", {"chargePointVendor": "x", "chargePointModel": "y"})
        await call(ws, "m1", "MeterValues", METER)
        profile = ChargingProfile(id=5, stack_level=1, purpose=ProfilePurpose.TX_DEFAULT,
                                  periods=(SchedulePeriod(0, 3000.0),))  # fmt: skip
        now = SystemClock().now()
        command = NativeCommand("c1", "ev", "ocpp", SetProfileCommand(1, profile), now, now)
        sending = asyncio.create_task(adapter.send(command))
        request = json.loads(await ws.recv())
        assert request[2] == "SetChargingProfile"
        # half a reply, then the peer goes away
        await ws.send('[3, "' + request[1] + '", {"sta')
    await sending
    await bus.drain()
    states = [m.data["state"] for m in seen if m.subject == "command.state"]
    assert states == ["sent", "failed"]
    assert [m.data["p_w"] for m in seen if m.subject == "telemetry.ocpp"] == [[-4200.0]]
    assert any(m.data.get("detail") == "disconnected" for m in seen if m.subject == "der.status.ocpp")


async def test_command_to_offline_station_fails_cleanly(
    rig: tuple[OcppAdapter, list[Message], MemoryBus],
) -> None:
    adapter, seen, bus = rig
    profile = ChargingProfile(
        id=5, stack_level=1, purpose=ProfilePurpose.TX_DEFAULT, periods=(SchedulePeriod(0, 1.0),)
    )
    now = SystemClock().now()
    await adapter.send(NativeCommand("c2", "ev", "ocpp", SetProfileCommand(1, profile), now, now))
    await bus.drain()
    (state,) = [m.data for m in seen if m.subject == "command.state"]
    assert state["state"] == "failed" and "not connected" in state["detail"]
