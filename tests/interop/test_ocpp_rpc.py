"""Our CSMS against npm ``ocpp-rpc`` in strictMode (schema-validated both ways) as the charge point.

The peer is installed by ``scripts/peers/ocpp-rpc.sh``; its driver is ``ocpp_rpc/charge_point.js``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from derms.adapters.base import AdapterContext, NativeCommand
from derms.adapters.ocpp import (
    ChargingProfile,
    ClearProfileCommand,
    OcppAdapter,
    OcppSettings,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
    SetProfileCommand,
)
from derms.bus import MemoryBus
from derms.bus.base import Message
from derms.core.clock import SystemClock
from derms.core.der import Capabilities, Der, DerKind

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).parent / "ocpp_rpc" / "charge_point.js"
NODE_MODULES = ROOT / ".peers" / "ocpp-rpc" / "node_modules"
if shutil.which("node") is None or not (NODE_MODULES / "ocpp-rpc").is_dir():
    pytest.skip("ocpp-rpc peer not installed (run scripts/peers/ocpp-rpc.sh)", allow_module_level=True)


class Recorder:
    """Collects every bus message; ``wait`` returns the first one matching a predicate."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._event = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)
        self._event.set()

    async def wait(self, predicate: Callable[[Message], bool], limit_s: float = 30.0) -> Message:
        async with asyncio.timeout(limit_s):
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                self._event.clear()
                await self._event.wait()


class Peer:
    """The node charge point process and its JSON event lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []

    async def next(self, name: str, limit_s: float = 30.0, **match: Any) -> dict[str, Any]:
        async with asyncio.timeout(limit_s):
            while True:
                line = await self.process.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    err = await self.process.stderr.read()  # type: ignore[union-attr]
                    raise AssertionError(f"peer exited; events {self.events}; stderr {err.decode()}")
                event = json.loads(line)
                self.events.append(event)
                if event["event"] == "error":
                    raise AssertionError(f"peer error: {event}")
                if event["event"] == name and all(event.get(k) == v for k, v in match.items()):
                    return event


@pytest.fixture
async def csms() -> AsyncIterator[tuple[OcppAdapter, Recorder]]:
    bus = MemoryBus()
    recorder = Recorder()
    await bus.subscribe(">", recorder)
    settings = OcppSettings(port=0, passwords={"RPC16": "s3cret-16", "RPC201": "s3cret-201"})
    adapter = OcppAdapter(AdapterContext(bus=bus, clock=SystemClock(), protocol="ocpp"), settings)
    await adapter.start()
    yield adapter, recorder
    await adapter.stop()
    await bus.close()


async def start_peer(adapter: OcppAdapter, ident: str, subprotocol: str, password: str) -> Peer:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(DRIVER),
        f"ws://127.0.0.1:{adapter.csms.port}/ocpp",
        ident,
        subprotocol,
        password,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    return Peer(process)


async def stop_peer(peer: Peer) -> None:
    peer.process.stdin.close()  # type: ignore[union-attr]
    try:
        async with asyncio.timeout(5):
            await peer.process.wait()
    except TimeoutError:
        peer.process.kill()
        await peer.process.wait()


def ev_charger(der_id: str, address: str) -> Der:
    return Der(
        id=der_id,
        site_id="site",
        kind=DerKind.EV_CHARGER,
        protocol="ocpp",
        address=address,
        tenant_id="t",
        capabilities=Capabilities(w_max_consume=22_000, phases=3, v_nom=230),
    )


def command(der_id: str, payload: Any, clock: SystemClock) -> NativeCommand:
    now = clock.now()
    return NativeCommand(
        command_id=f"cmd-{id(payload)}",
        der_id=der_id,
        protocol="ocpp",
        payload=payload,
        start=now,
        end=now + timedelta(hours=1),
    )


async def states(recorder: Recorder, command_id: str) -> list[str]:
    """The command's reported states, once a final-or-acknowledged one has arrived."""
    await recorder.wait(
        lambda m: (
            m.subject == "command.state"
            and m.data["command_id"] == command_id
            and m.data["state"] in ("acknowledged", "failed")
        )
    )
    return [
        m.data["state"]
        for m in recorder.messages
        if m.subject == "command.state" and m.data["command_id"] == command_id
    ]


@pytest.mark.parametrize(
    ("ident", "subprotocol", "password"),
    [
        ("RPC16", "ocpp1.6", "s3cret-16"),
        ("RPC201", "ocpp2.0.1", "s3cret-201"),
    ],
)
async def test_strict_charge_point_applies_profiles_and_returns_composite(
    csms: tuple[OcppAdapter, Recorder], ident: str, subprotocol: str, password: str
) -> None:
    adapter, recorder = csms
    clock = SystemClock()
    await adapter.register_device(ev_charger("ev-1", f"{ident}/1"))
    await adapter.register_device(ev_charger("site-max", ident))
    peer = await start_peer(adapter, ident, subprotocol, password)
    try:
        assert (await peer.next("boot"))["status"] == "Accepted"
        await peer.next("ready")
        station = adapter.csms.registry.stations[ident]
        assert station.version == subprotocol.removeprefix("ocpp")
        first = await recorder.wait(lambda m: m.subject == "telemetry.ocpp")
        assert first.data["der_id"][0] == "ev-1"

        # station maximum 12 A x 3 phases (8280 W at 230 V) at stack level 0 (connector/EVSE 0)
        station_max = ChargingProfile(
            id=1,
            stack_level=0,
            purpose=ProfilePurpose.STATION_MAX,
            unit=RateUnit.A,
            periods=(SchedulePeriod(0, 12.0, 3),),
            start=clock.now() - timedelta(minutes=1),
        )
        cmd = command("site-max", SetProfileCommand(0, station_max), clock)
        await adapter.send(cmd)
        assert await states(recorder, cmd.command_id) == ["sent", "acknowledged"]
        assert (await peer.next("profile"))["purpose"].endswith("MaxProfile")

        # a TxDefault of 7.2 kW, then a TxProfile at a higher stack level: 4.6 kW for 10 min, then 9 kW
        default = ChargingProfile(
            id=2,
            stack_level=0,
            purpose=ProfilePurpose.TX_DEFAULT,
            periods=(SchedulePeriod(0, 7200.0),),
            start=clock.now() - timedelta(minutes=1),
        )
        await adapter.send(cmd2 := command("ev-1", SetProfileCommand(1, default), clock))
        assert (await states(recorder, cmd2.command_id))[-1] == "acknowledged"
        await peer.next("profile")
        tx_id = str(next(e["txId"] for e in peer.events if e["event"] == "transaction"))
        tx = ChargingProfile(
            id=3,
            stack_level=2,
            purpose=ProfilePurpose.TX,
            transaction_id=tx_id,
            duration_s=3600,
            periods=(SchedulePeriod(0, 4600.0), SchedulePeriod(600, 9000.0)),
            start=clock.now().replace(microsecond=0),
        )
        await adapter.send(cmd3 := command("ev-1", SetProfileCommand(1, tx), clock))
        assert (await states(recorder, cmd3.command_id))[-1] == "acknowledged"
        await peer.next("profile")
        await peer.next("meter", w=4600)
        applied = await recorder.wait(lambda m: m.subject == "telemetry.ocpp" and m.data["p_w"][0] == -4600.0)
        assert applied.data["v_v"][0] == pytest.approx(231.5)

        composite = await adapter.composite_schedule("ev-1", 3600, RateUnit.W)
        assert composite is not None and composite.unit is RateUnit.W
        assert composite.limit_at(0) == 4600
        # from 600 s the TxProfile asks 9 kW but the station maximum (12 A x 3 x 230 V) caps it
        assert composite.limit_at(700) == pytest.approx(8280)
        in_amps = await adapter.composite_schedule("ev-1", 1200, RateUnit.A)
        assert in_amps is not None and in_amps.limit_at(0) == pytest.approx(6.7)

        # clear the TxProfile by purpose and stack level: the TxDefault (7.2 kW) governs again
        clear = command("ev-1", ClearProfileCommand(purpose=ProfilePurpose.TX, stack_level=2), clock)
        await adapter.send(clear)
        assert (await states(recorder, clear.command_id))[-1] == "acknowledged"
        after = await adapter.composite_schedule("ev-1", 600)
        assert after is not None and after.limit_at(0) == 7200
    finally:
        await stop_peer(peer)
    offline = await recorder.wait(lambda m: m.subject == "der.status.ocpp" and not m.data["online"])
    assert offline.data["detail"] == "disconnected"


@pytest.mark.parametrize(
    ("ident", "subprotocol", "password"),
    [
        ("RPC16", "ocpp1.6", "s3cret-16"),
        ("RPC201", "ocpp2.0.1", "s3cret-201"),
    ],
)
async def test_profile_rejected_by_peer_is_reported_failed(
    csms: tuple[OcppAdapter, Recorder], ident: str, subprotocol: str, password: str
) -> None:
    """A TxProfile naming a transaction the station does not run is Rejected (2.0.1 K01.FR.09)."""
    adapter, recorder = csms
    clock = SystemClock()
    await adapter.register_device(ev_charger("ev-2", f"{ident}/1"))
    peer = await start_peer(adapter, ident, subprotocol, password)
    try:
        await peer.next("ready")
        tx = ChargingProfile(
            id=9,
            stack_level=1,
            purpose=ProfilePurpose.TX,
            transaction_id="999",
            periods=(SchedulePeriod(0, 3000.0),),
        )
        cmd = command("ev-2", SetProfileCommand(1, tx), clock)
        await adapter.send(cmd)
        assert await states(recorder, cmd.command_id) == ["sent", "failed"]
        detail = next(
            m.data["detail"]
            for m in recorder.messages
            if m.subject == "command.state" and m.data["state"] == "failed"
        )
        assert "Rejected" in detail
        assert (await peer.next("profile-rejected"))["id"] == 9
    finally:
        await stop_peer(peer)


async def test_wrong_password_is_refused(csms: tuple[OcppAdapter, Recorder]) -> None:
    adapter, _ = csms
    peer = await start_peer(adapter, "RPC16", "ocpp1.6", "wrong")
    stdout, _ = await peer.process.communicate()
    events = [json.loads(line)["event"] for line in stdout.decode().splitlines()]
    assert "boot" not in events and "ready" not in events
    assert "RPC16" not in adapter.csms.registry.stations


async def test_connection_without_ocpp_subprotocol_is_refused(csms: tuple[OcppAdapter, Recorder]) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError, InvalidStatus

    adapter, _ = csms
    uri = f"ws://RPC16:s3cret-16@127.0.0.1:{adapter.csms.port}/ocpp/RPC16"
    with pytest.raises((ConnectionClosedError, InvalidStatus)):
        async with connect(uri, subprotocols=["ocpp1.5"]) as ws:  # type: ignore[list-item]
            await ws.recv()
