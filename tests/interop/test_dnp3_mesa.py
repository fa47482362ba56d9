"""Our DNP3 adapter and bridge against dnp3py's own MESA-DER (IEEE 1815.2) outstation,
unmodified: integrity poll of the full profile, and bridged setpoints that the outstation
validates against its profile ranges and mirrors to the associated analog inputs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib.resources import as_file, files
from typing import Any

import pytest
from dnp3.mesa.outstation import MesaOutstation, create_mesa_outstation

from derms.adapters.base import AdapterContext
from derms.adapters.dnp3 import Dnp3Settings, create_adapter
from derms.bridge.dnp3 import Dnp3Translator
from derms.bus import MemoryBus
from derms.core.clock import ScaledClock
from derms.core.controls import FixedPowerFactor, FixedReactivePower, GenerationLimit
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.events import COMMAND_STATE

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]
T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)


@pytest.fixture
async def mesa() -> AsyncIterator[MesaOutstation]:
    with as_file(files("dnp3.mesa") / "data" / "profiles" / "full.json") as path:
        outstation = create_mesa_outstation(path, host="127.0.0.1", port=0, address=7, master_address=1)
    task = asyncio.create_task(outstation.run())
    for _ in range(500):
        if outstation.local_address is not None:
            break
        await asyncio.sleep(0.01)
    try:
        yield outstation
    finally:
        await outstation.stop()
        task.cancel()


async def test_bridged_setpoints_reach_dnp3py_mesa_outstation(mesa: MesaOutstation) -> None:
    clock = ScaledClock(T0, speed=1200.0)  # a one-hour window lasts three seconds
    bus = MemoryBus(clock)
    states: list[dict[str, str]] = []

    async def on_state(msg: Any) -> None:
        states.append(msg.data)

    await bus.subscribe(COMMAND_STATE, on_state)
    adapter = create_adapter(AdapterContext(bus, clock, "dnp3"), Dnp3Settings(event_poll_interval_s=0.2))
    assert mesa.local_address is not None
    caps = Capabilities(w_max=2e6, var_max_inject=5e5, var_max_absorb=5e5)
    der = Der("mesa-1", "s", DerKind.UTILITY_PV, caps, "dnp3", f"127.0.0.1:{mesa.local_address[1]}/7", "t")
    await adapter.register_device(der)
    await adapter.start()
    translator = Dnp3Translator()
    try:
        session = adapter.sessions["mesa-1"]
        for _ in range(250):
            if session.online:
                break
            await asyncio.sleep(0.02)
        assert len(session.master.values) > 1900  # every BI, BO, AI and counter of the profile
        controls = [
            GenerationLimit(w=1_500_000.4),
            FixedReactivePower(var=-250_000),
            FixedPowerFactor(pf=0.955),
        ]
        for n, control in enumerate(controls):
            command = translator.translate(
                der, Setpoint("mesa-1", control, T0, T0 + timedelta(hours=1)), f"c{n}"
            )
            await adapter.send(command)
        await bus.drain()
        finals = {s["command_id"]: s["state"] for s in states}
        assert finals == {"c0": "active", "c1": "active", "c2": "active"}, states
        assert mesa.ao_store.get(509).value == 1_500_000  # DWMX.WLimSpt
        assert mesa.ao_store.get(511).value == -250_000  # DVAR.DVar.Tgt
        assert mesa.ao_store.get(210).value == 96  # DFPF.PFGnTgt: 0.955 at 0.01 per count
        assert mesa.database.get_binary_output(28).value  # DFPF.Mod enabled
        for _ in range(300):  # the windows end: modes latched off, commands completed
            await bus.drain()
            if sum(s["state"] == "completed" for s in states) == 3:
                break
            await asyncio.sleep(0.05)
        assert sorted(s["command_id"] for s in states if s["state"] == "completed") == ["c0", "c1", "c2"], (
            states
        )
        assert not any(mesa.database.get_binary_output(i).value for i in (17, 27, 28))
    finally:
        await adapter.stop()
        await bus.drain()
