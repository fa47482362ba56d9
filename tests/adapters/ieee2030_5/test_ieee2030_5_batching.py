"""Readings are published in batches, and none acknowledged with 201 is lost on shutdown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from derms.adapters.ieee2030_5.batching import TelemetryBatcher, merged
from derms.core.der import Capabilities, Der, DerKind
from derms.core.events import decode_telemetry
from derms.core.telemetry import DataQuality, OperationalStatus, Telemetry
from tests.adapters.ieee2030_5.sep2_harness import Harness

T = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


def _samples(n: int, start: int = 0) -> list[Telemetry]:
    return [Telemetry(f"d{i}", T, p_w=float(i)) for i in range(start, start + n)]


async def test_batches_go_out_on_the_interval_on_size_and_on_stop() -> None:
    batches: list[list[Telemetry]] = []

    async def publish(batch: list[Telemetry]) -> None:
        batches.append(batch)

    batcher = TelemetryBatcher(publish, interval_s=0.05, max_samples=10)
    batcher.start()
    await batcher.add(_samples(3))
    await batcher.add(_samples(2, 3))
    assert batches == []  # acknowledged, queued
    await asyncio.sleep(0.15)
    assert [len(b) for b in batches] == [5]  # one batch per interval
    await batcher.add(_samples(10, 5))
    assert [len(b) for b in batches] == [5, 10]  # full: published at once
    await batcher.add(_samples(1, 15))
    await batcher.stop()
    assert [s.p_w for b in batches for s in b] == [float(i) for i in range(16)]


def test_samples_of_one_der_at_one_instant_are_merged() -> None:
    """A DERStatus (SoC) and readings (one quantity each) of the same second become one sample,
    so the fleet state, which keeps a DER's newest sample per batch, gets power and SoC."""
    later = T.replace(second=1)
    samples = [
        Telemetry("b", T, soc=0.5, status=OperationalStatus.ON),
        Telemetry("b", T, p_w=2500.0),
        Telemetry("a", T, p_w=1.0),
        Telemetry("b", T, v_v=230.0, quality=DataQuality.ESTIMATED, available=False),
        Telemetry("b", later, p_w=2400.0),
        Telemetry("a", T, p_w=2.0),  # the same quantity again: a sample of its own
    ]
    assert merged(samples) == [
        Telemetry(
            "b",
            T,
            p_w=2500.0,
            v_v=230.0,
            soc=0.5,
            status=OperationalStatus.ON,
            available=False,
            quality=DataQuality.ESTIMATED,
        ),
        Telemetry("a", T, p_w=1.0),
        Telemetry("b", later, p_w=2400.0),
        Telemetry("a", T, p_w=2.0),
    ]


async def test_a_failed_publish_keeps_the_batch_in_order() -> None:
    published: list[Telemetry] = []
    fail = [True]

    async def publish(batch: list[Telemetry]) -> None:
        if fail[0]:
            raise ConnectionError("bus down")
        published.extend(batch)

    batcher = TelemetryBatcher(publish, interval_s=60)
    await batcher.add(_samples(2))
    await batcher.flush()
    assert batcher.pending == 2 and published == []
    await batcher.add(_samples(1, 2))
    fail[0] = False
    await batcher.stop()
    assert [s.der_id for s in published] == ["d0", "d1", "d2"] and batcher.pending == 0


async def test_readings_acknowledged_before_shutdown_reach_the_bus(harness: Harness) -> None:
    await harness.adapter.register_device(
        Der(
            "der-a",
            "s",
            DerKind.PV_INVERTER,
            Capabilities(w_max=5000),
            "ieee2030_5",
            harness.lfdi("dev-a"),
            "default",
        )
    )
    lfdi = harness.lfdi("dev-a")
    mup = (
        '<MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns"><mRID>AB00000000000000000000000000CD01</mRID>'
        "<roleFlags>49</roleFlags><serviceCategoryKind>0</serviceCategoryKind><status>1</status>"
        f"<deviceLFDI>{lfdi}</deviceLFDI><MirrorMeterReading><mRID>AB00000000000000000000000000CD02</mRID>"
        "<ReadingType><powerOfTenMultiplier>0</powerOfTenMultiplier><uom>38</uom></ReadingType>"
        "</MirrorMeterReading></MirrorUsagePoint>"
    )
    async with harness.client("dev-a") as client:
        location = (await client.post("/mup", content=mup)).headers["location"]
        for k in range(20):
            reading = (
                '<MirrorMeterReading xmlns="urn:ieee:std:2030.5:ns"><mRID>AB00000000000000000000000000CD02</mRID>'
                f"<Reading><timePeriod><duration>0</duration><start>{1784116800 + k}</start></timePeriod>"
                f"<value>{100 + k}</value></Reading></MirrorMeterReading>"
            )
            assert (await client.post(location, content=reading)).status_code == 201
    await harness.adapter.stop()
    await harness.bus.drain()
    samples = [
        s for m in harness.messages if m.subject == "telemetry.ieee2030_5" for s in decode_telemetry(m.data)
    ]
    assert [s.p_w for s in samples] == [100.0 + k for k in range(20)]  # roleFlags 0x49: a DER mirror
