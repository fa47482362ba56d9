"""Namespaces, safe parsing and the value formats of OpenADR 2.0b XML.

Date-times are ``xcal:date-time`` (RFC 5545 in XML, UTC with ``Z``); durations are RFC 5545
``dur-value`` strings such as ``PT1H30M`` (xCal, RFC 6321 section 3.6.6).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from lxml import etree

NS = {
    "oadr": "http://openadr.org/oadr-2.0b/2012/07",
    "ei": "http://docs.oasis-open.org/ns/energyinterop/201110",
    "pyld": "http://docs.oasis-open.org/ns/energyinterop/201110/payloads",
    "emix": "http://docs.oasis-open.org/ns/emix/2011/06",
    "power": "http://docs.oasis-open.org/ns/emix/2011/06/power",
    "scale": "http://docs.oasis-open.org/ns/emix/2011/06/siscale",
    "xcal": "urn:ietf:params:xml:ns:icalendar-2.0",
    "strm": "urn:ietf:params:xml:ns:icalendar-2.0:stream",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "dsp": "http://openadr.org/oadr-2.0b/2012/07/xmldsig-properties",
}
NSMAP = {k: v for k, v in NS.items() if k not in ("ds", "dsp")}

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class MalformedMessage(ValueError):
    """The bytes are not a well-formed (or schema-valid) OpenADR 2.0b payload."""


def qname(prefixed: str) -> str:
    """``"ei:venID"`` → ``"{http://docs.oasis-open.org/ns/energyinterop/201110}venID"``."""
    prefix, local = prefixed.split(":", 1)
    return f"{{{NS[prefix]}}}{local}"


def el(prefixed: str, *children: etree._Element | None, text: object = None) -> etree._Element:
    """Build an element; ``None`` children are skipped so optional elements read naturally."""
    node = etree.Element(qname(prefixed))  # prefixes are assigned once, in codec.envelope
    if text is not None:
        node.text = fmt(text)
    for child in children:
        if child is not None:
            node.append(child)
    return node


def opt(prefixed: str, value: object) -> etree._Element | None:
    """An element with text, or ``None`` when ``value`` is ``None``."""
    return None if value is None else el(prefixed, text=value)


def fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return fmt_datetime(value)
    if isinstance(value, timedelta):
        return fmt_duration(value)
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


def fmt_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("OpenADR date-times must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fmt_duration(value: timedelta) -> str:
    """RFC 5545 duration (whole seconds, rounded); negative durations get a leading ``-``."""
    sign = "-" if value < timedelta(0) else ""
    total = timedelta(seconds=round(abs(value).total_seconds()))
    days, rest = total.days, total.seconds
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = f"{sign}P"
    if days:
        out += f"{days}D"
    if hours or minutes or seconds or not days:
        out += "T"
        if hours:
            out += f"{hours}H"
        if minutes:
            out += f"{minutes}M"
        if seconds or not (hours or minutes):
            out += f"{seconds}S"
    return out


_DURATION = re.compile(r"^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text: str) -> timedelta:
    """Parse an RFC 5545 duration (weeks, days, hours, minutes, seconds)."""
    m = _DURATION.match(text.strip())
    if not m or text.strip() in ("P", "-P", "+P", "PT"):
        raise MalformedMessage(f"not an RFC 5545 duration: {text!r}")
    sign, weeks, days, hours, minutes, seconds = m.groups()
    value = timedelta(
        weeks=int(weeks or 0),
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=float(seconds or 0),
    )
    return -value if sign == "-" else value


def parse_datetime(text: str) -> datetime:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedMessage(f"not a date-time: {text!r}") from exc
    if parsed.tzinfo is None:
        raise MalformedMessage(f"date-time without a UTC offset: {text!r}")
    return parsed.astimezone(UTC)


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted bytes: no DTDs, no entity expansion, no network, bounded size."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage("message too large")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.internalDTD is not None or root.getroottree().docinfo.doctype:
        raise MalformedMessage("DOCTYPE declarations are not allowed")
    return root


def text(node: etree._Element, path: str) -> str | None:
    """Text of the first match of ``path`` (prefixes from :data:`NS`), or ``None``."""
    found = node.find(path, NS)
    if found is None:
        return None
    return (found.text or "").strip()


def need(node: etree._Element, path: str) -> str:
    value = text(node, path)
    if value is None:
        raise MalformedMessage(f"missing {path}")
    return value


def texts(node: etree._Element, path: str) -> tuple[str, ...]:
    return tuple((n.text or "").strip() for n in node.findall(path, NS))


def to_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1")
