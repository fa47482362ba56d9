"""The lxml MirrorMeterReading reader agrees with pydantic-xml and refuses what it must."""

from __future__ import annotations

import pytest
from envoy_schema.server.schema.sep2.metering_mirror import MirrorMeterReading, MirrorMeterReadingList

from derms.adapters.ieee2030_5.mirror_xml import parse_mirror_readings
from derms.adapters.ieee2030_5.schema import XmlRejected, parse

NS = 'xmlns="urn:ieee:std:2030.5:ns"'
SINGLE = (
    f'<MirrorMeterReading {NS} href="/mup/3/1"><mRID>AB00000000000000000000000000CD02</mRID>'
    "<description>Real power</description><lastUpdateTime>1784116800</lastUpdateTime>"
    '<Reading subscribable="0"><qualityFlags>0001</qualityFlags>'
    "<timePeriod><duration>300</duration><start>1784116800</start></timePeriod>"
    "<touTier>1</touTier><value>-1234</value></Reading>"
    "<ReadingType><accumulationBehaviour>12</accumulationBehaviour><commodity>1</commodity>"
    "<conversionFactor><multiplier>0</multiplier><unit>38</unit><value>1</value></conversionFactor>"
    "<flowDirection>19</flowDirection><intervalLength>300</intervalLength><kind>37</kind><phase>64</phase>"
    "<powerOfTenMultiplier>-1</powerOfTenMultiplier><tieredConsumptionBlocks>false</tieredConsumptionBlocks>"
    "<uom>38</uom></ReadingType></MirrorMeterReading>"
)
SETS = (
    f'<MirrorMeterReadingList {NS} all="2" results="2">'
    "<MirrorMeterReading><mRID>AB00000000000000000000000000CD03</mRID>"
    "<MirrorReadingSet><mRID>AB00000000000000000000000000CD04</mRID>"
    "<timePeriod><duration>600</duration><start>1784116800</start></timePeriod>"
    "<Reading><timePeriod><duration>300</duration><start>1784116800</start></timePeriod><value>5</value></Reading>"
    "<Reading><timePeriod><duration>300</duration><start>1784117100</start></timePeriod><value>6</value></Reading>"
    "</MirrorReadingSet><ReadingType><uom>29</uom></ReadingType></MirrorMeterReading>"
    "<MirrorMeterReading><mRID>AB00000000000000000000000000CD05</mRID>"
    "<Reading><value>7</value></Reading></MirrorMeterReading></MirrorMeterReadingList>"
)


def test_single_reading_matches_pydantic_xml() -> None:
    [fast] = parse_mirror_readings(SINGLE.encode())
    assert fast == parse(SINGLE.encode(), MirrorMeterReading)
    assert fast.reading is not None and fast.reading.value == -1234
    assert fast.readingType is not None and fast.readingType.powerOfTenMultiplier == -1


def test_list_with_reading_sets_matches_pydantic_xml() -> None:
    fast = parse_mirror_readings(SETS.encode())
    assert fast == parse(SETS.encode(), MirrorMeterReadingList).mirrorMeterReadings
    assert [r.value for r in fast[0].mirrorReadingSets[0].readings] == [5, 6]  # type: ignore[index,union-attr]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (SINGLE.replace("<value>-1234</value>", "<value>12x</value>"), "valid integer"),
        (SINGLE.replace("<mRID>AB00000000000000000000000000CD02</mRID>", ""), "mRID"),
        (
            SINGLE.replace("<touTier>1</touTier>", "<touTier>1</touTier><bogus>1</bogus>"),
            "unexpected element",
        ),
        (
            SINGLE.replace(
                "</MirrorMeterReading>", "<Reading><value>1</value></Reading></MirrorMeterReading>"
            ),
            "more than once",
        ),
        (SINGLE.replace("<value>-1234</value>", "<value><x/></value>"), "holds elements"),
        (SINGLE.replace(NS, 'xmlns="urn:other"'), "expected <MirrorMeterReading>"),
        (SINGLE.replace("MirrorMeterReading", "MirrorUsagePoint"), "expected <MirrorMeterReading>"),
        (SETS.replace(' all="2"', ""), "all_"),
        ("<MirrorMeterReading " + NS + "><mRID>AB", "malformed"),
        ('<!DOCTYPE x [<!ENTITY e "e">]>' + SINGLE, "DOCTYPE"),
        (
            SINGLE.replace("<description>Real power</description>", "<description>x</description>" * 3000),
            "byte limit",
        ),
    ],
    ids=[
        "bad-int",
        "no-mrid",
        "unknown",
        "duplicate",
        "nested-text",
        "namespace",
        "root",
        "list-all",
        "malformed",
        "entity",
        "oversized",
    ],
)
def test_bad_bodies_are_refused_with_the_reason(body: str, reason: str) -> None:
    with pytest.raises(XmlRejected, match=reason):
        parse_mirror_readings(body.encode())
