"""MirrorMeterReading(List) bodies read with lxml straight into the envoy-schema models.

The hot POST of the Metering Mirror function set (2030.5-2018 10.5.4.3) skips pydantic-xml's
generic deserialiser: :func:`derms.adapters.ieee2030_5.schema.safe_root` parses the body
(size limit, DOCTYPE/entities refused, entities/DTD/network off), a fixed element table of
the 2018 schema turns it into a dict, and the envoy-schema model validates every field and
type (pydantic). Stricter than pydantic-xml: an unknown element, or a second copy of a
single-valued element, is refused instead of silently dropped.
"""

from __future__ import annotations

from typing import Any

from envoy_schema.server.schema.sep2.metering_mirror import MirrorMeterReading, MirrorMeterReadingList
from lxml import etree
from pydantic import ValidationError

from derms.adapters.ieee2030_5.schema import NS, XmlRejected, safe_root

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

Spec = dict[str, tuple[str, "Spec | None", bool]]
"""Child element local name → (model field, nested spec or ``None`` for text, repeatable)."""


def _text(*names: str) -> Spec:
    return {n: (n, None, False) for n in names}


DATE_TIME_INTERVAL = _text("duration", "start")
UNIT_VALUE = _text("multiplier", "unit", "value")
READING: Spec = {
    **_text("consumptionBlock", "qualityFlags", "touTier", "value", "localID"),
    "timePeriod": ("timePeriod", DATE_TIME_INTERVAL, False),
}
READING_TYPE: Spec = {
    **_text(
        "accumulationBehaviour",
        "commodity",
        "dataQualifier",
        "flowDirection",
        "intervalLength",
        "kind",
        "maxNumberOfIntervals",
        "numberOfConsumptionBlocks",
        "numberOfTouTiers",
        "phase",
        "powerOfTenMultiplier",
        "subIntervalLength",
        "supplyLimit",
        "tieredConsumptionBlocks",
        "uom",
    ),
    "calorificValue": ("calorificValue", UNIT_VALUE, False),
    "conversionFactor": ("conversionFactor", UNIT_VALUE, False),
}
IDENTIFIED = _text("mRID", "description", "version")
MIRROR_READING_SET: Spec = {
    **IDENTIFIED,
    "timePeriod": ("timePeriod", DATE_TIME_INTERVAL, False),
    "Reading": ("readings", READING, True),
}
MIRROR_METER_READING: Spec = {
    **IDENTIFIED,
    **_text("lastUpdateTime", "nextUpdateTime"),
    "MirrorReadingSet": ("mirrorReadingSets", MIRROR_READING_SET, True),
    "Reading": ("reading", READING, False),
    "ReadingType": ("readingType", READING_TYPE, False),
}
MIRROR_METER_READING_LIST: Spec = {"MirrorMeterReading": ("mirrorMeterReadings", MIRROR_METER_READING, True)}
ATTRIBUTES = {
    "href": "href",
    XSI_TYPE: "type",
    "subscribable": "subscribable",
    "all": "all_",
    "results": "results",
}
_PREFIX = f"{{{NS}}}"


def _read(element: etree._Element, spec: Spec) -> dict[str, Any]:
    out: dict[str, Any] = {ATTRIBUTES[k]: v for k, v in element.attrib.items() if k in ATTRIBUTES}
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):  # processing instruction
            continue
        entry = spec.get(tag[len(_PREFIX) :]) if tag.startswith(_PREFIX) else None
        if entry is None:
            raise XmlRejected(f"unexpected element {tag} in {element.tag}")
        field, nested, repeated = entry
        if nested is None and len(child):
            raise XmlRejected(f"{tag} holds elements where a value is expected")
        value = child.text if nested is None else _read(child, nested)
        if repeated:
            out.setdefault(field, []).append(value)
        elif field in out:
            raise XmlRejected(f"{tag} given more than once in {element.tag}")
        else:
            out[field] = value
    return out


def parse_mirror_readings(body: bytes) -> list[MirrorMeterReading]:
    """A MirrorMeterReading or MirrorMeterReadingList body as typed readings; :class:`XmlRejected` if bad."""
    root = safe_root(body, "MirrorMeterReading", "MirrorMeterReadingList")
    is_list = root.tag == f"{_PREFIX}MirrorMeterReadingList"
    name = "MirrorMeterReadingList" if is_list else "MirrorMeterReading"
    try:
        if is_list:
            listed = MirrorMeterReadingList.model_validate(_read(root, MIRROR_METER_READING_LIST))
            return listed.mirrorMeterReadings or []
        return [MirrorMeterReading.model_validate(_read(root, MIRROR_METER_READING))]
    except ValidationError as exc:
        raise XmlRejected(f"invalid {name}: {exc}") from exc
