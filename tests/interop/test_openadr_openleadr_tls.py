"""openleadr 0.5.36 VEN over mutual TLS with XML signatures against our 2.0b VTN.

The VEN is provisioned by its certificate fingerprint (no open enrolment); it signs every
payload and checks ours against the VTN fingerprint it was given (openleadr drops replies
with a wrong signature or fingerprint, so completing the exchange shows ours verify). A VEN
presenting another certificate gets nothing.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from derms.adapters.base import AdapterContext
from derms.adapters.openadr.adapter import create_adapter
from derms.adapters.openadr.oadr20b.pki import LabCa
from derms.adapters.openadr.oadr20b.vocabulary import OptType
from derms.adapters.openadr.settings import OpenAdrSettings, VenProvision
from derms.bridge.openadr import OpenAdrTranslator
from derms.bus import MemoryBus
from derms.core.clock import SystemClock
from derms.core.controls import LoadShed
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint

ROOT = Path(__file__).resolve().parents[2]
PEER_PY = ROOT / ".peers/openleadr/bin/python"
PEER_SCRIPT = ROOT / "tests/adapters/openadr/peers/openleadr_ven.py"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not PEER_PY.exists(), reason="openleadr peer missing: run scripts/peers/openleadr.sh"),
]


async def wait_for(predicate, limit_s: float = 25.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def start_peer(url: str, name: str, cert, ca: LabCa, vtn_fp: str, seen: list[dict]):
    peer = await asyncio.create_subprocess_exec(
        str(PEER_PY),
        str(PEER_SCRIPT),
        "--url",
        url,
        "--name",
        name,
        "--seconds",
        "10",
        "--cert",
        str(cert.certfile),
        "--key",
        str(cert.keyfile),
        "--ca",
        str(ca.certfile),
        "--vtn-fingerprint",
        vtn_fp,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def read() -> None:
        assert peer.stdout is not None
        async for line in peer.stdout:
            if line.startswith(b"{"):
                seen.append(json.loads(line))

    return peer, asyncio.create_task(read())


async def test_openleadr_ven_over_tls_with_signatures(tmp_path):
    clock = SystemClock()
    ca = LabCa(tmp_path, clock.now())
    server_cert = ca.issue("vtn", server=True)
    ven_cert = ca.issue("ven-tls", server=False)
    rogue_cert = ca.issue("ven-rogue", server=False)
    bus = MemoryBus(clock)
    await bus.start()
    adapter = create_adapter(
        AdapterContext(bus, clock, "openadr"),
        OpenAdrSettings(
            port=0,
            poll_freq_s=1,
            status_tick_s=0.2,
            open_enrolment=False,
            tls_certfile=str(server_cert.certfile),
            tls_keyfile=str(server_cert.keyfile),
            tls_ca_certs=str(ca.certfile),
            sign_messages=True,
            require_signatures=True,
            vens=[
                VenProvision(ven_name="ven-tls", fingerprint=ven_cert.fingerprint),
                VenProvision(ven_name="ven-rogue", fingerprint=ven_cert.fingerprint),
            ],
        ),
    )
    device = Der("cni-tls", "s", DerKind.CI_LOAD, Capabilities(w_max_consume=1e5), "openadr", "ven-tls", "t")
    await adapter.register_device(device)
    await adapter.start()
    assert adapter.url.startswith("https://")
    seen: list[dict] = []
    rogue_seen: list[dict] = []
    peer, reader = await start_peer(adapter.url, "ven-tls", ven_cert, ca, server_cert.fingerprint, seen)
    # the same provisioned name with another certificate: refused at registration
    rogue, rogue_reader = await start_peer(
        adapter.url, "ven-rogue", rogue_cert, ca, server_cert.fingerprint, rogue_seen
    )
    try:
        await wait_for(lambda: any(s["kind"] == "registered" and s["ven_id"] for s in seen))
        ven_id = next(s["ven_id"] for s in seen if s["kind"] == "registered")
        now = clock.now()
        sp = Setpoint(device.id, LoadShed(level=3), now + timedelta(minutes=5), now + timedelta(minutes=35))
        await adapter.send(OpenAdrTranslator(adapter.settings.market_context).translate(device, sp, "tls-1"))
        await wait_for(lambda: adapter.vtn.opt_state("tls-1", ven_id) is not None)
        assert adapter.vtn.opt_state("tls-1", ven_id).opt_type is OptType.OPT_IN
        assert [s["signals"] for s in seen if s["kind"] == "event"] == [
            [{"name": "SIMPLE", "type": "level", "values": [3.0]}]
        ]
        await asyncio.wait_for(rogue.wait(), 30)
        assert set(adapter.vtn.vens) == {ven_id}
        assert not any(s["kind"] == "event" for s in rogue_seen)
    finally:
        await asyncio.wait_for(peer.wait(), 30)
        reader.cancel()
        rogue_reader.cancel()
        await adapter.stop()
        await bus.close()
