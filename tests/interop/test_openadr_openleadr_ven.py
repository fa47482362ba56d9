"""openleadr 0.5.36 VEN (not ours, own environment) against our 2.0b VTN adapter.

It registers (QueryRegistration → CreatePartyRegistration → RegisterReport → RequestEvent),
polls, receives events, opts in (CreatedEvent), opts out (CreatedEvent optOut, then an
oadrCreateOpt and oadrCancelOpt), and sends TELEMETRY_USAGE reports that arrive on the bus as
platform telemetry. openleadr silently drops replies that fail its XSD, so every step it
completes shows our replies were schema-valid.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from derms.adapters.base import AdapterContext
from derms.adapters.openadr.adapter import create_adapter
from derms.adapters.openadr.oadr20b.vocabulary import OptType
from derms.adapters.openadr.settings import OpenAdrSettings
from derms.bridge.openadr import OpenAdrTranslator
from derms.bus import MemoryBus
from derms.core.clock import SystemClock
from derms.core.controls import LoadLimit, LoadShed
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.events import decode_telemetry

ROOT = Path(__file__).resolve().parents[2]
PEER_PY = ROOT / ".peers/openleadr/bin/python"
PEER_SCRIPT = ROOT / "tests/adapters/openadr/peers/openleadr_ven.py"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not PEER_PY.exists(), reason="openleadr peer missing: run scripts/peers/openleadr.sh"),
]


async def wait_for(predicate, limit_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def der(address: str) -> Der:
    caps = Capabilities(w_max_consume=200_000.0)
    return Der(
        id="cni-1",
        site_id="site-1",
        kind=DerKind.CI_LOAD,
        capabilities=caps,
        protocol="openadr",
        address=address,
        tenant_id="t1",
    )


async def test_openleadr_ven_against_our_vtn(tmp_path):
    clock = SystemClock()
    bus = MemoryBus(clock)
    await bus.start()
    commands, telemetry, status = [], [], []

    async def on_command(msg):
        commands.append(msg.data)

    async def on_telemetry(msg):
        telemetry.extend(decode_telemetry(msg.data))

    async def on_status(msg):
        status.append(msg.data)

    await bus.subscribe("command.state", on_command)
    await bus.subscribe("telemetry.openadr", on_telemetry)
    await bus.subscribe("der.status.openadr", on_status)
    adapter = create_adapter(
        AdapterContext(bus, clock, "openadr"),
        OpenAdrSettings(port=0, poll_freq_s=1, report_granularity_s=1, status_tick_s=0.2),
    )
    assert adapter.vtn.validator is not None, "the VTN must validate against oadr_20b.xsd in this test"
    translator = OpenAdrTranslator(adapter.settings.market_context)
    device = der("ven-a/load-1")
    await adapter.register_device(device)
    await adapter.start()
    peer = await asyncio.create_subprocess_exec(
        str(PEER_PY),
        str(PEER_SCRIPT),
        "--url",
        adapter.url,
        "--name",
        "ven-a",
        "--seconds",
        "8",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    seen: list[dict] = []

    async def read() -> None:
        assert peer.stdout is not None
        async for line in peer.stdout:
            if line.startswith(b"{"):  # the peer library prints banners of its own
                seen.append(json.loads(line))

    reader = asyncio.create_task(read())
    try:
        await wait_for(lambda: any(s["kind"] == "registered" for s in seen))
        ven_id = next(s["ven_id"] for s in seen if s["kind"] == "registered")
        assert ven_id in adapter.vtn.vens
        now = clock.now()
        # an event to opt into, one to opt out of, and one to flip with EiOpt
        for event_id, control in [
            ("in-1", LoadLimit(w=80_000.0)),
            ("out-1", LoadShed(level=2)),
            ("flip-1", LoadShed(level=1)),
        ]:
            sp = Setpoint(device.id, control, now + timedelta(minutes=10), now + timedelta(minutes=40))
            await adapter.send(translator.translate(device, sp, event_id))
        await wait_for(
            lambda: {"in-1", "out-1", "flip-1"} <= {s["event_id"] for s in seen if s["kind"] == "event"}
        )
        got = {s["event_id"]: s for s in seen if s["kind"] == "event"}
        assert got["in-1"]["signals"] == [{"name": "LOAD_DISPATCH", "type": "setpoint", "values": [80.0]}]
        assert got["out-1"]["signals"] == [{"name": "SIMPLE", "type": "level", "values": [2.0]}]
        await wait_for(
            lambda: (
                adapter.vtn.opt_state("in-1", ven_id) is not None
                and adapter.vtn.opt_state("out-1", ven_id) is not None
            )
        )
        assert adapter.vtn.opt_state("in-1", ven_id).opt_type is OptType.OPT_IN
        assert adapter.vtn.opt_state("out-1", ven_id).opt_type is OptType.OPT_OUT
        await wait_for(lambda: any(s["kind"] == "cancel_opt" for s in seen))
        history = [h.opt_type for h in adapter.vtn.opt_history[("flip-1", ven_id)]]
        assert history == [OptType.OPT_IN]  # optIn, then createOpt optOut, then cancelOpt removed it
        assert adapter.vtn.opts == {}
        # reports → platform telemetry with the derms sign convention (42.5 kW load → -42500 W)
        await wait_for(lambda: len(telemetry) >= 1)
        assert telemetry[0].der_id == "cni-1" and telemetry[0].p_w == pytest.approx(-42_500.0)
        states = {(c["command_id"], c["state"]) for c in commands}
        assert {("in-1", "sent"), ("in-1", "acknowledged"), ("out-1", "failed")} <= states
        assert any(s.get("der_id") == "cni-1" and s["online"] for s in status)
    finally:
        await asyncio.wait_for(peer.wait(), 30)
        reader.cancel()
        await adapter.stop()
        await bus.close()
    assert peer.returncode == 0
