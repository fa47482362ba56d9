"""The 2030.5 server over real mTLS: discovery, registration, DER resources, metering, isolation."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from lxml import etree

from derms.adapters.ieee2030_5.identity import lfdi_from_cert_der, sfdi_from_lfdi
from derms.adapters.ieee2030_5.schema import ActivePower, DERControlBase
from derms.adapters.ieee2030_5.tls import client_context
from derms.core.der import Capabilities, Der, DerKind
from derms.core.events import decode_telemetry
from tests.adapters.ieee2030_5.sep2_harness import Harness, assert_valid

NS = {"s": "urn:ieee:std:2030.5:ns", "c": "https://csipaus.org/ns"}


def text(body: bytes, path: str) -> str:
    found = etree.fromstring(body).find(path, NS)
    assert found is not None, path
    return found.text or ""


def attr(body: bytes, path: str, name: str) -> str:
    found = etree.fromstring(body) if path == "." else etree.fromstring(body).find(path, NS)
    assert found is not None, path
    return found.get(name) or ""


def der(harness: Harness, name: str, der_id: str) -> Der:
    return Der(
        id=der_id,
        site_id="site-1",
        kind=DerKind.HOME_BATTERY,
        capabilities=Capabilities(w_max=5000, w_max_consume=5000),
        protocol="ieee2030_5",
        address=harness.lfdi(name),
        tenant_id="default",
    )


def test_sfdi_matches_the_standard_example() -> None:
    """IEEE 2030.5-2018 6.3.3 example: LFDI 3E4F45AB31… → SFDI 167261211391."""
    assert sfdi_from_lfdi("3E4F45AB31EDFE5B67E343E5E4562E31984E23E5") == 167261211391


def _handshake(port: int, ctx: ssl.SSLContext) -> tuple[str, str]:
    """Blocking TLS handshake plus one request; returns (cipher, version) or raises."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /tm HTTP/1.1\r\nHost: localhost\r\n\r\n")
        if not tls.recv(1024):
            raise ConnectionError("server closed the connection")
        cipher = tls.cipher()
        return (cipher[0] if cipher else ""), tls.version() or ""


async def test_tls_requires_a_client_certificate_and_negotiates_ccm8(harness: Harness) -> None:
    port = harness.adapter._server.port  # type: ignore[union-attr]
    cert, key, issued = harness.certs.device("dev-a")
    cipher, version = await asyncio.to_thread(_handshake, port, client_context(cert, key, harness.certs.ca))
    assert (cipher, version) == ("ECDHE-ECDSA-AES128-CCM8", "TLSv1.2")
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(str(harness.certs.ca))
    bare.maximum_version = ssl.TLSVersion.TLSv1_2
    bare.set_ciphers("ECDHE-ECDSA-AES128-CCM8")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        await asyncio.to_thread(_handshake, port, bare)
    assert len(issued.lfdi) == 40


async def test_responses_are_not_held_back_by_nagle(harness: Harness) -> None:
    """On the stdlib loop a TLS socket keeps Nagle on; head + body writes then wait ~40 ms for an ACK."""
    await _setup_device(harness, "dev-a", "der-a")
    async with harness.client("dev-a") as client:
        assert (await client.get("/tm")).status_code == 200
        connections = harness.adapter._server._server.server_state.connections  # type: ignore[union-attr]
        sockets = [c.transport.get_extra_info("socket") for c in connections]
        assert sockets and all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)


async def test_discovery_and_in_band_registration(harness: Harness) -> None:
    async with harness.client("dev-a") as client:
        dcap = (await client.get("/dcap")).content
        edev_href = attr(dcap, "s:EndDeviceListLink", "href")
        assert attr((await client.get("/tm")).content, ".", "href") == "/tm"
        empty = (await client.get(edev_href)).content
        assert attr(empty, ".", "all") == "0"
        lfdi = harness.lfdi("dev-a")
        body = (
            f'<EndDevice xmlns="urn:ieee:std:2030.5:ns"><sFDI>{sfdi_from_lfdi(lfdi)}</sFDI>'
            f"<changedTime>0</changedTime><lFDI>{lfdi}</lFDI></EndDevice>"
        )
        created = await client.post(edev_href, content=body)
        assert created.status_code == 201
        location = created.headers["location"]
        again = await client.post(edev_href, content=body)
        assert again.status_code == 204 and again.headers["location"] == location
        edev = (await client.get(location)).content
        assert text(edev, "s:lFDI") == lfdi
        reg = (await client.get(attr(edev, "s:RegistrationLink", "href"))).content
        pin = int(text(reg, "s:pIN"))
        assert sum(int(d) for d in str(pin)) % 10 == 0  # PIN carries its check digit
        listed = (await client.get(f"{edev_href}?s=0&l=10")).content
        assert attr(listed, ".", "all") == "1" and attr(listed, ".", "results") == "1"
        # registering somebody else's LFDI is refused
        other = harness.lfdi("dev-b")
        bad = body.replace(lfdi, other).replace(str(sfdi_from_lfdi(lfdi)), str(sfdi_from_lfdi(other)))
        assert (await client.post(edev_href, content=bad)).status_code == 400
    discovered = await harness.published("der.status.ieee2030_5")
    assert any(d.get("address") == lfdi for d in discovered)


async def _setup_device(harness: Harness, name: str, der_id: str) -> int:
    await harness.adapter.register_device(der(harness, name, der_id))
    return harness.adapter.repo.end_device_by_der(der_id).id


async def test_program_control_default_curve_chain_is_xsd_valid(harness: Harness) -> None:
    e = await _setup_device(harness, "dev-a", "der-a")
    manager = harness.adapter.manager
    program = manager.create_program("default", "csip", 2, frozenset({e}))
    now = manager.now()
    await manager.create_control(
        program.id,
        DERControlBase(
            opModExpLimW=ActivePower(value=15, multiplier=2),
            opModGenLimW=ActivePower(value=4, multiplier=3),
            opModImpLimW=ActivePower(value=5000, multiplier=0),
            opModLoadLimW=ActivePower(value=3, multiplier=3),
            opModMaxLimW=8000,
            opModConnect=True,
            opModEnergize=True,
            opModFixedW=-2500,
        ),
        now + 60,
        900,
        randomize_start=30,
    )
    await manager.set_default(
        program.id, DERControlBase(opModExpLimW=ActivePower(value=5, multiplier=3)), set_grad_w=2000
    )
    curve = await manager.create_curve(
        program.id, 11, [(92, 30), (98, 0), (102, 0), (108, -30)], y_ref_type=2
    )
    async with harness.client("dev-a") as client:
        edev = (await client.get(f"/edev/{e}")).content
        fsa_list = (await client.get(attr(edev, "s:FunctionSetAssignmentsListLink", "href"))).content
        derp_href = attr(fsa_list, "s:FunctionSetAssignments/s:DERProgramListLink", "href")
        programs = (await client.get(f"{derp_href}?l=10")).content
        assert attr(programs, ".", "all") == "2"  # the dispatch program and "csip"
        for prog in etree.fromstring(programs).findall("s:DERProgram", NS):
            assert prog.find("s:primacy", NS) is not None
        csip = f"/edev/{e}/derp/{program.id}"
        prog = (await client.get(csip)).content
        controls = (await client.get(attr(prog, "s:DERControlListLink", "href") + "?l=5")).content
        assert text(controls, "s:DERControl/s:DERControlBase/c:opModExpLimW/s:value") == "15"
        assert text(controls, "s:DERControl/s:EventStatus/s:currentStatus") == "0"
        assert text(controls, "s:DERControl/s:randomizeStart") == "30"
        default = (await client.get(attr(prog, "s:DefaultDERControlLink", "href"))).content
        assert text(default, "s:setGradW") == "2000"
        curves = (await client.get(attr(prog, "s:DERCurveListLink", "href") + "?l=5")).content
        assert len(etree.fromstring(curves).findall("s:DERCurve/s:CurveData", NS)) == 4
        assert (await client.get(f"{csip}/dc/{curve.id}")).status_code == 200
        active = (await client.get(attr(prog, "s:ActiveDERControlListLink", "href"))).content
        assert attr(active, ".", "all") == "0"
        harness.clock.advance(120)
        active = (await client.get(attr(prog, "s:ActiveDERControlListLink", "href"))).content
        assert attr(active, ".", "all") == "1"
    assert len(harness.validated) >= 10


async def test_der_resources_feed_registry_and_telemetry(harness: Harness) -> None:
    e = await _setup_device(harness, "dev-a", "der-a")
    cap = (
        '<DERCapability xmlns="urn:ieee:std:2030.5:ns"><modesSupported>00500088</modesSupported>'
        "<rtgMaxChargeRateW><multiplier>0</multiplier><value>5000</value></rtgMaxChargeRateW>"
        "<rtgMaxVA><multiplier>0</multiplier><value>5000</value></rtgMaxVA>"
        "<rtgMaxVar><multiplier>0</multiplier><value>3000</value></rtgMaxVar>"
        "<rtgMaxW><multiplier>3</multiplier><value>5</value></rtgMaxW>"
        "<rtgMaxWh><multiplier>1</multiplier><value>1350</value></rtgMaxWh>"
        '<type>83</type><csipaus:doeModesSupported xmlns:csipaus="https://csipaus.org/ns">0F</csipaus:doeModesSupported>'
        "</DERCapability>"
    )
    status = (
        '<DERStatus xmlns="urn:ieee:std:2030.5:ns"><operationalModeStatus><dateTime>0</dateTime>'
        "<value>2</value></operationalModeStatus><readingTime>1784116800</readingTime>"
        "<stateOfChargeStatus><dateTime>0</dateTime><value>5500</value></stateOfChargeStatus></DERStatus>"
    )
    async with harness.client("dev-a") as client:
        assert (await client.put(f"/edev/{e}/der/1/dercap", content=cap)).status_code == 204
        assert (await client.put(f"/edev/{e}/der/1/ders", content=status)).status_code == 204
        got = (await client.get(f"/edev/{e}/der/1/dercap")).content
        assert text(got, "s:rtgMaxW/s:multiplier") == "3"
        assert (await client.get(f"/edev/{e}/der/1/derg")).status_code == 404
        der_list = (await client.get(f"/edev/{e}/der")).content
        assert attr(der_list, "s:DER/s:DERCapabilityLink", "href") == f"/edev/{e}/der/1/dercap"
    discovered = [d for d in await harness.published("der.status.ieee2030_5") if "capabilities" in d]
    assert discovered[-1]["capabilities"]["w_max"] == 5000.0
    assert discovered[-1]["capabilities"]["wh_max"] == 13500.0
    batches = await harness.published("telemetry.ieee2030_5")
    samples = [s for b in batches for s in decode_telemetry(b)]
    assert samples[-1].soc == pytest.approx(0.55)


def _mup(lfdi: str, multiplier: int = 0, value: int = -1234) -> str:
    return (
        '<MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns"><mRID>AB00000000000000000000000000CD01</mRID>'
        "<description>site</description><roleFlags>03</roleFlags><serviceCategoryKind>0</serviceCategoryKind>"
        f"<status>1</status><deviceLFDI>{lfdi}</deviceLFDI>"
        "<MirrorMeterReading><mRID>AB00000000000000000000000000CD02</mRID><description>Real power</description>"
        f"<Reading><timePeriod><duration>0</duration><start>1784116800</start></timePeriod><value>{value}</value></Reading>"
        f"<ReadingType><kind>37</kind><phase>0</phase><powerOfTenMultiplier>{multiplier}</powerOfTenMultiplier>"
        "<uom>38</uom></ReadingType></MirrorMeterReading></MirrorUsagePoint>"
    )


async def test_mirror_usage_point_readings_become_telemetry(harness: Harness) -> None:
    await _setup_device(harness, "dev-a", "der-a")
    lfdi = harness.lfdi("dev-a")
    async with harness.client("dev-a") as client:
        created = await client.post("/mup", content=_mup(lfdi, multiplier=1, value=-250))
        assert created.status_code == 201
        location = created.headers["location"]
        mup = (await client.get(location)).content
        assert text(mup, "s:MirrorMeterReading/s:ReadingType/s:powerOfTenMultiplier") == "1"
        reading = (
            '<MirrorMeterReading xmlns="urn:ieee:std:2030.5:ns"><mRID>AB00000000000000000000000000CD02</mRID>'
            "<Reading><timePeriod><duration>0</duration><start>1784116860</start></timePeriod>"
            "<value>300</value></Reading></MirrorMeterReading>"
        )
        assert (await client.post(location, content=reading)).status_code == 201
        bad = _mup(lfdi, multiplier=12).replace("CD02", "CD03")
        assert (await client.post(location, content=bad.replace("MirrorUsagePoint", "X"))).status_code == 400
        assert (await client.post("/mup", content=bad)).status_code == 400
        listed = (await client.get("/mup?l=10")).content
        assert attr(listed, ".", "all") == "1"
    samples = [s for b in await harness.published("telemetry.ieee2030_5") for s in decode_telemetry(b)]
    # roleFlags 0x03 = isMirror | isPremisesAggregationPoint: a site meter, positive readings are import
    assert [s.p_w for s in samples] == [2500.0, -3000.0]


async def test_device_cannot_touch_another_devices_resources(harness: Harness) -> None:
    ea = await _setup_device(harness, "dev-a", "der-a")
    eb = await _setup_device(harness, "dev-b", "der-b")
    async with harness.client("dev-b") as client_b:
        created = await client_b.post("/mup", content=_mup(harness.lfdi("dev-b")))
        mup_b = created.headers["location"]
    async with harness.client("dev-a") as client:
        for path in (f"/edev/{eb}", f"/edev/{eb}/reg", f"/edev/{eb}/der/1/dercap", f"/edev/{eb}/derp", mup_b):
            assert (await client.get(path)).status_code == 404, path
        status = '<DERStatus xmlns="urn:ieee:std:2030.5:ns"><readingTime>1</readingTime></DERStatus>'
        assert (await client.put(f"/edev/{eb}/der/1/ders", content=status)).status_code == 404
        assert (await client.post("/mup", content=_mup(harness.lfdi("dev-b")))).status_code == 400
        listed = (await client.get("/edev?l=10")).content
        assert attr(listed, ".", "all") == "1" and f"/edev/{ea}" in listed.decode()
    assert harness.adapter.repo.end_devices[eb].status is None


@pytest.mark.parametrize(
    "body",
    [
        b"<EndDevice xmlns='urn:ieee:std:2030.5:ns'><sFDI>1</sFDI>",  # malformed
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b"<EndDevice xmlns='urn:ieee:std:2030.5:ns'><sFDI>&lol2;</sFDI></EndDevice>",  # entity expansion
        b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><EndDevice>&xxe;</EndDevice>',  # XXE
        b"<EndDevice xmlns='urn:ieee:std:2030.5:ns'>"
        + b"<description>x</description>" * 5000
        + b"</EndDevice>",
        b"<Nope xmlns='urn:ieee:std:2030.5:ns'/>",
    ],
    ids=["malformed", "billion-laughs", "xxe", "oversized", "wrong-root"],
)
async def test_bad_xml_is_rejected_and_changes_nothing(harness: Harness, body: bytes) -> None:
    before = len(harness.adapter.repo.end_devices)
    async with harness.client("dev-a") as client:
        response = await client.post("/edev", content=body)
    assert response.status_code == 400
    assert len(harness.adapter.repo.end_devices) == before


async def test_proxy_mode_is_off_by_default(harness: Harness) -> None:
    """A forwarded-certificate header is ignored unless proxy mode is configured."""
    _, _, issued_b = harness.certs.device("dev-b")
    await _setup_device(harness, "dev-b", "der-b")
    async with harness.client("dev-a") as client:
        response = await client.get(
            "/edev?l=5", headers={"X-Client-Cert": issued_b.cert_pem.decode().replace("\n", "")}
        )
        assert attr(response.content, ".", "all") == "0"


def test_lfdi_is_sha256_prefix(harness: Harness) -> None:
    issued = harness.certs.device("dev-a")[2]
    from cryptography.hazmat.primitives.serialization import Encoding

    der_bytes = issued.certificate.public_bytes(Encoding.DER)
    assert issued.lfdi == lfdi_from_cert_der(der_bytes)
    assert_valid(
        harness.xsd,
        b'<Time xmlns="urn:ieee:std:2030.5:ns"><currentTime>0</currentTime><dstEndTime>0</dstEndTime><dstOffset>0</dstOffset><dstStartTime>0</dstStartTime><quality>7</quality><tzOffset>0</tzOffset></Time>',
    )


async def test_der_settings_override_ratings_and_availability_is_telemetry(harness: Harness) -> None:
    e = await _setup_device(harness, "dev-a", "der-a")
    ns = 'xmlns="urn:ieee:std:2030.5:ns" xmlns:csipaus="https://csipaus.org/ns"'
    cap = (
        f"<DERCapability {ns}><modesSupported>00000000</modesSupported>"
        "<rtgMaxW><multiplier>0</multiplier><value>6000</value></rtgMaxW><type>4</type></DERCapability>"
    )
    settings = (
        f"<DERSettings {ns}><setGradW>500</setGradW><setMaxW><multiplier>2</multiplier><value>45</value></setMaxW>"
        "<updatedTime>1784116800</updatedTime><csipaus:doeModesEnabled>03</csipaus:doeModesEnabled></DERSettings>"
    )
    availability = (
        f"<DERAvailability {ns}><readingTime>1784116800</readingTime>"
        "<statWAvail><multiplier>0</multiplier><value>0</value></statWAvail></DERAvailability>"
    )
    async with harness.client("dev-a") as client:
        assert (await client.put(f"/edev/{e}/der/1/dercap", content=cap)).status_code == 204
        assert (await client.put(f"/edev/{e}/der/1/derg", content=settings)).status_code == 204
        assert (await client.put(f"/edev/{e}/der/1/dera", content=availability)).status_code == 204
        got = (await client.get(f"/edev/{e}/der/1/derg")).content
        assert text(got, "s:setGradW") == "500"
        assert (await client.get(f"/edev/{e}/der/1/dera")).status_code == 200
        assert (await client.get("/tm")).status_code == 200
    caps = [d for d in await harness.published("der.status.ieee2030_5") if "capabilities" in d]
    assert [c["capabilities"]["w_max"] for c in caps] == [6000.0, 4500.0]  # DERSettings setMaxW wins
    samples = [s for b in await harness.published("telemetry.ieee2030_5") for s in decode_telemetry(b)]
    assert samples[-1].available is False


CURVE_MODES = {
    "opModFreqWatt": 0, "opModHFRTMayTrip": 1, "opModHFRTMustTrip": 2, "opModHVRTMayTrip": 3,
    "opModHVRTMomentaryCessation": 4, "opModHVRTMustTrip": 5, "opModLFRTMayTrip": 6, "opModLFRTMustTrip": 7,
    "opModLVRTMayTrip": 8, "opModLVRTMomentaryCessation": 9, "opModLVRTMustTrip": 10, "opModVoltVar": 11,
    "opModVoltWatt": 12, "opModWattPF": 13, "opModWattVar": 14,
}  # fmt: skip


async def test_every_2018_opmod_and_csip_aus_limit_is_published_xsd_valid(harness: Harness) -> None:
    """All DERControlBase modes of 2030.5-2018 plus the four CSIP-AUS limits in one control."""
    e = await _setup_device(harness, "dev-a", "der-a")
    manager = harness.adapter.manager
    program = manager.create_program("default", "all modes", 1, frozenset({e}))
    links = {}
    for mode, curve_type in CURVE_MODES.items():
        pf = curve_type == 13
        curve = await manager.create_curve(
            program.id,
            curve_type,
            [(50, 95), (100, 90)] if pf else [(90, 40), (110, -40)],
            y_ref_type=1,
            excitation=[False, True] if pf else None,
        )
        links[mode] = {"href": f"/edev/{e}/derp/{program.id}/dc/{curve.id}"}
    power = {"value": 1500, "multiplier": 0}
    base = DERControlBase.model_validate(
        {
            "opModConnect": True,
            "opModEnergize": True,
            "opModFixedPFAbsorbW": {"displacement": 950, "multiplier": -3, "excitation": True},
            "opModFixedPFInjectW": {"displacement": 970, "multiplier": -3, "excitation": False},
            "opModFixedVar": {"refType": 2, "value": -2500},
            "opModFixedW": -5000,
            "opModFreqDroop": {"dBOF": 3600, "dBUF": 3600, "kOF": 5, "kUF": 5, "openLoopTms": 500},
            "opModMaxLimW": 8000,
            "opModTargetVar": {"value": 300, "multiplier": 0},
            "opModTargetW": power,
            "rampTms": 600,
            "opModImpLimW": power,
            "opModExpLimW": power,
            "opModGenLimW": power,
            "opModLoadLimW": power,
            **links,
        }
    )
    await manager.create_control(program.id, base, manager.now(), 600)
    async with harness.client("dev-a") as client:
        body = (
            await client.get(f"/edev/{e}/derp/{program.id}/derc")
        ).content  # XSD-validated by the client hook
        curves = (await client.get(f"/edev/{e}/derp/{program.id}/dc?l=20")).content
    published = {
        etree.QName(el).localname for el in etree.fromstring(body).find("s:DERControl/s:DERControlBase", NS)
    }  # type: ignore[union-attr]
    expected = {name for name in DERControlBase.model_fields if name.startswith(("opMod", "ramp"))} - {
        "opModStorageTargetW"
    }
    assert published == expected
    assert etree.fromstring(curves).get("all") == "15"
