"""The ASGI fast path answers exactly as the FastAPI routes do, errors included."""

from __future__ import annotations

from derms.adapters.ieee2030_5.schema import ActivePower, DERControlBase
from derms.core.der import Capabilities, Der, DerKind
from derms.core.events import decode_telemetry
from tests.adapters.ieee2030_5.sep2_harness import Harness

MUP = (
    '<MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns"><mRID>AB00000000000000000000000000CD01</mRID>'
    "<roleFlags>49</roleFlags><serviceCategoryKind>0</serviceCategoryKind><status>1</status>"
    "<deviceLFDI>{lfdi}</deviceLFDI><MirrorMeterReading><mRID>AB00000000000000000000000000CD02</mRID>"
    "<ReadingType><powerOfTenMultiplier>0</powerOfTenMultiplier><uom>38</uom></ReadingType>"
    "</MirrorMeterReading></MirrorUsagePoint>"
)
READING = (
    '<MirrorMeterReading xmlns="urn:ieee:std:2030.5:ns"><mRID>AB00000000000000000000000000CD02</mRID>'
    "<Reading><timePeriod><duration>0</duration><start>1784116800</start></timePeriod>"
    "<value>{value}</value></Reading></MirrorMeterReading>"
)


async def _device(harness: Harness, name: str) -> int:
    der = Der(
        f"der-{name}",
        "s",
        DerKind.PV_INVERTER,
        Capabilities(w_max=5000),
        "ieee2030_5",
        harness.lfdi(name),
        "default",
    )
    await harness.adapter.register_device(der)
    return harness.adapter.repo.end_device_by_der(der.id).id


async def test_fast_path_and_fastapi_give_the_same_answers(harness: Harness) -> None:
    edev = await _device(harness, "dev-a")
    other = await _device(harness, "dev-b")
    manager = harness.adapter.manager
    program = manager.create_program("default", "p", 2, frozenset({edev}))
    now = manager.now()
    for k in range(3):
        await manager.create_control(
            program.id,
            DERControlBase(opModExpLimW=ActivePower(value=100 + k, multiplier=0)),
            now - 60 + 3600 * k,
            3600,
        )
    derc = f"/edev/{edev}/derp/{program.id}/derc"
    async with harness.client("dev-a") as client:
        # an unknown query key sends the request on to FastAPI, which ignores it
        for path in (f"{derc}?l=10", f"{derc}?s=1&l=2", f"/edev/{edev}/derp/{program.id}/actderc?l=5", derc):
            fast, slow = await client.get(path), await client.get(f"{path}{'&' if '?' in path else '?'}x=1")
            assert fast.status_code == slow.status_code == 200
            assert (
                fast.content == slow.content and fast.headers["content-type"] == slow.headers["content-type"]
            )
        assert (await client.get(f"{derc}?l=10")).content.count(b"<DERControl ") == 3
        foreign = f"/edev/{other}/derp/{program.id}/derc?l=10"
        assert (
            (await client.get(foreign)).status_code == (await client.get(f"{foreign}&x=1")).status_code == 404
        )
        assert (await client.get(f"{derc}?l=300")).status_code == 422  # out of range: FastAPI's validation
        assert (await client.get(f"{derc}?l=ten")).status_code == 422

        location = (await client.post("/mup", content=MUP.format(lfdi=harness.lfdi("dev-a")))).headers[
            "location"
        ]
        assert (await client.post(location, content=READING.format(value=7))).status_code == 201
        assert (await client.post(f"{location}?x=1", content=READING.format(value=8))).status_code == 201
        bad = READING.format(value="seven")
        fast, slow = (
            await client.post(location, content=bad),
            await client.post(f"{location}?x=1", content=bad),
        )
        assert fast.status_code == slow.status_code == 400 and fast.text == slow.text
    async with harness.client("dev-b") as client_b:
        assert (await client_b.post(location, content=READING.format(value=9))).status_code == 404
    samples = [s for b in await harness.published("telemetry.ieee2030_5") for s in decode_telemetry(b)]
    assert [s.p_w for s in samples] == [7.0, 8.0]  # the refused and foreign posts changed nothing
