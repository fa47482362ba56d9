"""The CSMS with our simulated charge points over real websockets (1.6J and 2.0.1)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from derms.adapters.base import AdapterContext
from derms.adapters.ocpp import OcppAdapter, OcppSettings, RateUnit
from derms.bridge.ocpp import OcppTranslator
from derms.bus import MemoryBus
from derms.core.clock import SystemClock
from derms.core.controls import ChargingLimit
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.sim.protocols.ocpp import SimChargePoint
from tests.adapters.ocpp.csms_rig import PASSWORDS, Seen


def charger(der_id: str, address: str) -> Der:
    return Der(id=der_id, site_id="s", kind=DerKind.EV_CHARGER, protocol="ocpp", address=address, tenant_id="t",
               capabilities=Capabilities(w_max_consume=11_000, phases=3, v_nom=230))  # fmt: skip


def url(adapter: OcppAdapter, scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{adapter.csms.port}/ocpp"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_dispatch_reaches_simulated_charger(csms: tuple[OcppAdapter, Seen], version: str) -> None:
    adapter, seen = csms
    ident = "SIM16" if version == "1.6" else "SIM201"
    der = charger("ev", f"{ident}/1")
    await adapter.register_device(der)
    clock = SystemClock()
    sim = SimChargePoint(
        ident, url(adapter), clock, version=version, password=PASSWORDS[ident], meter_interval_s=0.2
    )
    task = asyncio.create_task(sim.run())
    try:
        async with asyncio.timeout(10):
            await sim.booted.wait()
        await seen.wait(lambda m: m.subject == "telemetry.ocpp" and m.data["p_w"][0] == -11_000)

        start = clock.now()
        setpoint = Setpoint(
            "ev", ChargingLimit(limit=10.04, unit="A"), start, start + dt.timedelta(minutes=30)
        )
        command = OcppTranslator(stack_level=3).translate(der, setpoint, "cmd-1")
        assert [(loss.requested, loss.delivered) for loss in command.losses] == [(10.04, 10.0)]
        await adapter.send(command)
        await seen.wait(lambda m: m.subject == "command.state" and m.data["state"] == "acknowledged")
        # 10 A x 3 phases x 230 V
        await seen.wait(lambda m: m.subject == "telemetry.ocpp" and m.data["p_w"][0] == -6900)
        composite = await adapter.composite_schedule("ev", 3600, RateUnit.W)
        assert composite is not None and composite.limit_at(0) == 6900
        assert composite.limit_at(1900) == 11_000  # the profile lasts 30 minutes
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await seen.wait(lambda m: m.subject == "der.status.ocpp" and m.data["detail"] == "disconnected")


async def test_unknown_station_is_discovered(csms: tuple[OcppAdapter, Seen]) -> None:
    adapter, seen = csms
    sim = SimChargePoint("SIM201", url(adapter), SystemClock(), version="2.0.1", password="pw-201")
    task = asyncio.create_task(sim.run())
    try:
        found = await seen.wait(
            lambda m: m.subject == "der.status.ocpp" and m.data.get("detail") == "discovered"
        )
        assert found.data["address"] == "SIM201" and found.data["ocpp_version"] == "2.0.1"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_basic_auth_required(csms: tuple[OcppAdapter, Seen]) -> None:
    adapter, _ = csms
    for password in (None, "wrong"):
        sim = SimChargePoint("SIM16", url(adapter), SystemClock(), password=password)
        with pytest.raises(InvalidStatus) as err:
            await sim.run()
        assert err.value.response.status_code == 401
    sim = SimChargePoint("NOBODY", url(adapter), SystemClock(), password="pw-16")
    with pytest.raises(InvalidStatus):
        await sim.run()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "csms.pem", directory / "csms.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_security_profile_2_tls_with_basic_auth(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    bus = MemoryBus()
    adapter = OcppAdapter(
        AdapterContext(bus=bus, clock=SystemClock(), protocol="ocpp"),
        OcppSettings(port=0, passwords=PASSWORDS, tls_certfile=cert, tls_keyfile=key),
    )
    await adapter.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        token = base64.b64encode(b"RAW:pw-raw").decode()
        async with connect(
            f"wss://127.0.0.1:{adapter.csms.port}/ocpp/RAW", ssl=context, subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
        ) as ws:  # fmt: skip
            assert ws.subprotocol == "ocpp2.0.1"
            await ws.send('[2,"1","Heartbeat",{}]')
            reply = await ws.recv()
            assert reply.startswith('[3,"1",{"currentTime"')
        with pytest.raises(ssl.SSLError):
            async with connect(
                f"wss://127.0.0.1:{adapter.csms.port}/ocpp/RAW", ssl=ssl.create_default_context()
            ):
                pass
    finally:
        await adapter.stop()
        await bus.close()


async def test_ocpp_2_1_session_validated_against_the_2_1_schemas(csms: tuple[OcppAdapter, Seen]) -> None:
    """A 2.1 station (raw websocket): boot, meter values, and a SetChargingProfile the library
    validates against the OCPP 2.1 schema before sending."""
    import json

    from derms.adapters.ocpp import (
        ChargingProfile,
        ProfilePurpose,
        SchedulePeriod,
        SetProfileCommand,
    )

    adapter, seen = csms
    await adapter.register_device(charger("ev21", "RAW/1"))
    token = base64.b64encode(b"RAW:pw-raw").decode()
    async with connect(
        f"{url(adapter)}/RAW", subprotocols=["ocpp2.1", "ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {token}"},
    ) as ws:  # fmt: skip
        assert ws.subprotocol == "ocpp2.0.1"  # our preference when both are offered
    async with connect(
        f"{url(adapter)}/RAW", subprotocols=["ocpp2.1"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {token}"},
    ) as ws:  # fmt: skip
        boot = {"reason": "PowerUp", "chargingStation": {"vendorName": "v", "model": "m"}}
        await ws.send(json.dumps([2, "b", "BootNotification", boot]))
        assert json.loads(await ws.recv())[2]["status"] == "Accepted"
        assert adapter.csms.registry.stations["RAW"].version == "2.1"
        meter = {"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [
            {"value": 2500, "measurand": "Power.Active.Import"}]}]}  # fmt: skip
        await ws.send(json.dumps([2, "m", "MeterValues", meter]))
        assert json.loads(await ws.recv()) == [3, "m", {}]
        profile = ChargingProfile(7, 1, ProfilePurpose.TX_DEFAULT, (SchedulePeriod(0, 16.0, 3),),
                                  unit=RateUnit.A)  # fmt: skip
        now = SystemClock().now()
        from derms.adapters.base import NativeCommand

        sending = asyncio.create_task(
            adapter.send(NativeCommand("c21", "ev21", "ocpp", SetProfileCommand(1, profile), now, now))
        )
        request = json.loads(await ws.recv())
        assert (
            request[2] == "SetChargingProfile"
            and request[3]["chargingProfile"]["chargingSchedule"][0]["id"] == 1
        )
        await ws.send(json.dumps([3, request[1], {"status": "Accepted"}]))
        await sending
    await seen.wait(lambda m: m.subject == "command.state" and m.data["state"] == "acknowledged")
    await seen.wait(lambda m: m.subject == "telemetry.ocpp" and m.data["p_w"] == [-2500.0])
