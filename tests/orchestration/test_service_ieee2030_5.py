"""The orchestration service with a DER behind the IEEE 2030.5 server over mutual TLS: an
objective cancelled releases its command through the adapter's native cancel (the DERControl
becomes Cancelled on the device), not through a superseding release command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from derms.adapters.ieee2030_5 import Ieee2030_5Adapter, Ieee2030_5Settings, create_adapter
from derms.adapters.ieee2030_5.events import EventStatusCode
from derms.adapters.ieee2030_5.pki import TestPki
from derms.bridge.ieee2030_5 import Ieee2030_5Translator
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import CommandState
from derms.core.events import OBJECTIVE
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.orchestration.tables import commands
from derms.sim.device import SimulatedDevice
from derms.sim.protocols.ieee2030_5 import Sep2Device, Sep2DeviceConfig
from derms.store import audit
from derms.store import registry as reg
from derms.store.scope import TenantScope
from tests.orchestration.service_rig import START, Rig, start_rig

BATTERY = Capabilities(w_max=5_000.0, w_max_consume=5_000.0, va_max=5_000.0, wh_max=13_500.0)


@dataclass
class Sep2Rig:
    rig: Rig
    adapter: Ieee2030_5Adapter
    device: Sep2Device
    der: Der

    async def poll(self, seconds: float) -> None:
        """Advance the clock; the device polls its controls, the server's reports reach the bus."""
        self.rig.clock.advance(seconds)
        await self.device.poll()
        await self.adapter.telemetry.flush()
        await self.rig.drain()


@pytest.fixture
async def sep2(db_engine: Engine, tmp_path: Path) -> AsyncIterator[Sep2Rig]:
    rig = await start_rig(db_engine, n=60)
    runtime = rig.runtime
    pki = TestPki(datetime.now(UTC))
    ca = tmp_path / "serca.pem"
    ca.write_bytes(pki.serca.cert_pem)
    server_cert, server_key = pki.server().write(tmp_path, "server")
    issued = pki.device("SN-orch-1")
    cert, key = issued.write(tmp_path, "orch-1", chain=(pki.mca,))
    site = next(d.site_id for d in rig.ders if d.tenant_id == "utility")
    der = Der("sep2-bat-1", site, DerKind.HOME_BATTERY, BATTERY, "ieee2030_5", issued.lfdi, "utility")
    with runtime.engine.begin() as conn:
        reg.create_ders(conn, [der], scope=TenantScope.utility(), at=START, actor="test")
    runtime.reload_fleet()
    settings = Ieee2030_5Settings(
        port=0, cert_file=server_cert, key_file=server_key, ca_file=ca, tenant_id="utility"
    )
    adapter = create_adapter(runtime.context("ieee2030_5"), settings)
    runtime.add_adapter(adapter)
    runtime.bridge.register(Ieee2030_5Translator())
    await adapter.start()
    await adapter.register_device(der)
    device = Sep2Device(
        Sep2DeviceConfig(adapter.url, cert, key, ca, issued.lfdi),
        SimulatedDevice(der, rig.clock, seed=7),
        rig.clock,
    )
    await device.start()
    rig_ = Sep2Rig(rig, adapter, device, der)
    await rig_.poll(1.0)  # status and readings (with the SoC) reach the fleet state
    row = runtime.fleet.index[der.id]
    assert np.isfinite(runtime.fleet.soc[row]) and np.isfinite(runtime.fleet.p_w[row])
    try:
        yield rig_
    finally:
        await device.close()
        await runtime.stop()


async def test_cancelled_objective_cancels_the_2030_5_control_natively(sep2: Sep2Rig) -> None:
    service = sep2.rig.service
    objective = Objective(
        "evt-sep2",
        ObjectiveKind.CAPACITY_TARGET,
        START,
        timedelta(hours=2),
        area=Area(AreaLevel.GROUP, (sep2.der.id,)),
        target_w=2_000.0,
        source="test",
    )
    await service.submit(objective, actor="test")
    await service.step()
    out = service.last_outcome
    assert out is not None and [s.der_id for s in out.plan.setpoints] == [sep2.der.id]
    await sep2.poll(60.0)  # the device receives, starts and follows the DERControl
    (cid,) = [c.command_id for (d, _), c in service._in_force.items() if d == sep2.der.id]
    assert service.tracker.state(cid) == CommandState.ACTIVE
    (mrid,) = sep2.device._events
    assert sep2.device._events[mrid].control.EventStatus_.currentStatus == EventStatusCode.ACTIVE

    await sep2.rig.runtime.bus.publish(f"{OBJECTIVE}.cancelled", {"id": "evt-sep2", "source": "test"})
    await sep2.rig.drain()
    await service.step()
    await sep2.poll(60.0)
    assert service.tracker.state(cid) == CommandState.CANCELLED
    assert sep2.device._events[mrid].control.EventStatus_.currentStatus == EventStatusCode.CANCELLED
    assert sep2.device.applied.get("opModTargetW") != mrid  # no longer obeyed
    with sep2.rig.runtime.engine.connect() as conn:
        rows = conn.execute(select(commands.c.id, commands.c.binding).where(commands.c.der_id == sep2.der.id))
        assert [(r.id, r.binding) for r in rows if r.binding == "released"] == []  # no release command
        entries = audit.entries(conn, action_prefix="orchestration.release")
    assert len(entries) == 1
    assert entries[0].detail["cancelled"] == [cid] and entries[0].detail["superseded"] == {}
